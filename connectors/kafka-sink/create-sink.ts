/** Picks the CDC sink implementation (see sink.ts and maintained-sink.ts; the CDC README says why the default). */
import type { KafkaClients } from '../../services/core/clients.js';
import type { Logger } from '../../services/core/log.js';
import { MaintainedSink } from './maintained-sink.js';
import { type ChangeSink, KafkaSink, type SinkProducer } from './sink.js';
import type { Compression } from './wire.js';

/** The producer CDC uses unless told otherwise, decided by `npm run bench:cdc -- --producer both`. */
export const DEFAULT_SINK_PRODUCER: SinkProducer = 'wire';

export interface CreateSinkOptions {
  kafka: KafkaClients;
  logger: Logger;
  producer?: SinkProducer;
  /** Messages per produce request. */
  maxBatchMessages?: number;
  /** Record batch codec of the wire producer (cdc.compression); default none. */
  compression?: Compression;
}

export function createKafkaSink(options: CreateSinkOptions): ChangeSink {
  const { kafka, logger, maxBatchMessages } = options;
  const batch = maxBatchMessages === undefined ? {} : { maxBatchMessages };
  return (options.producer ?? DEFAULT_SINK_PRODUCER) === 'maintained'
    ? new MaintainedSink({ kafka, logger, ...batch })
    : new KafkaSink({ kafka, logger, ...batch, compression: options.compression ?? 'none' });
}
