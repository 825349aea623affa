/** The Kafka Connect worker's settings (services/stack/connect.ts): ports, the worker properties, PARITY_STACK_CONNECT. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isParityError } from '../../../services/core/errors.js';
import { stackConfig } from '../../../services/stack/config.js';
import { connectStatus, connectWanted, stackConnectSettings, workerProperties } from '../../../services/stack/connect.js';

const dir = mkdtempSync(join(tmpdir(), 'parity-connect-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const config = () => stackConfig({ PARITY_STATE_DIR: dir, PARITY_CACHE_DIR: join(dir, 'cache') });

describe('stack Connect worker settings', () => {
  it('lives in the state dir on port 18083 against the stack Kafka, fetching nothing', () => {
    const s = stackConnectSettings(config(), {});
    expect(s.port).toBe(18083);
    expect(s.root).toBe(join(dir, 'connect'));
    expect(s.brokers).toEqual(['127.0.0.1:19092']);
    expect(s.libDir.startsWith(join(dir, 'cache'))).toBe(true);
    expect(s.java).toBeUndefined();
  });

  it('takes PARITY_CONNECT_PORT and refuses what is not a port, naming it', () => {
    expect(stackConnectSettings(config(), { PARITY_CONNECT_PORT: '18999' }).port).toBe(18999);
    for (const bad of ['abc', '0', '70000']) {
      let caught: unknown;
      try {
        stackConnectSettings(config(), { PARITY_CONNECT_PORT: bad });
      } catch (err) {
        caught = err;
      }
      expect(isParityError(caught) && caught.code).toBe('PARITY_BAD_INPUT');
      expect((caught as Error).message).toContain(`PARITY_CONNECT_PORT=${bad}`);
    }
  });

  it('writes a standalone worker: JsonConverter with schemas, file offsets, REST on 127.0.0.1, the plugin folder', () => {
    const props = workerProperties({ ...stackConnectSettings(config(), {}), brokers: ['a:1', 'b:2'] });
    expect(props).toContain('bootstrap.servers=a:1,b:2');
    expect(props).toContain('value.converter=org.apache.kafka.connect.json.JsonConverter');
    expect(props).toContain('value.converter.schemas.enable=true');
    expect(props).toContain(`offset.storage.file.filename=${join(dir, 'connect', 'offsets')}`);
    expect(props).toContain('listeners=http://127.0.0.1:18083');
    expect(props).toMatch(/^plugin\.path=.*plugins$/m);
  });

  it('PARITY_STACK_CONNECT=1 or true asks for the worker; a stopped worker is no status line', async () => {
    expect(connectWanted({ PARITY_STACK_CONNECT: '1' })).toBe(true);
    expect(connectWanted({ PARITY_STACK_CONNECT: 'true' })).toBe(true);
    expect(connectWanted({})).toBe(false);
    expect(await connectStatus(stackConnectSettings(config(), {}))).toBeUndefined();
  });
});
