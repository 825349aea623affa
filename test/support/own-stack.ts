/**
 * The environment of a stack a test starts for itself: its own state dir and ports from `base`
 * (PostgreSQL source/target base and +1, Kafka broker/controller +10/+11, registry +20/+21, Redis +30),
 * and no streaming replica. Pick `base` below Linux's ephemeral range (32768-60999), where a client
 * socket's local port could hold one of them.
 */
export function ownStackEnv(stateDir: string, base: number, from: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...from,
    PARITY_STATE_DIR: stateDir,
    PARITY_PG_SOURCE_PORT: String(base),
    PARITY_PG_TARGET_PORT: String(base + 1),
    PARITY_KAFKA_PORT: String(base + 10),
    PARITY_KAFKA_CONTROLLER_PORT: String(base + 11),
    PARITY_REGISTRY_PORT: String(base + 20),
    PARITY_REGISTRY_MANAGEMENT_PORT: String(base + 21),
    PARITY_REDIS_PORT: String(base + 30),
  };
  delete env.PARITY_STACK_REPLICA;
  return env;
}
