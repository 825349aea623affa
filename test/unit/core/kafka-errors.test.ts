import { ProtocolError, ResponseError, AuthenticationError, NetworkError, UnsupportedApiError } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { ProduceError, produceFailure } from '../../../connectors/kafka-sink/produce-client.js';
import { ParityError } from '../../../services/core/errors.js';
import { fatalKafkaHint, kafkaError } from '../../../services/core/kafka-errors.js';

describe('kafkaError', () => {
  it('marks authentication, authorization and unsupported-version failures as not retriable, with a hint', () => {
    for (const err of [
      new ProtocolError('TOPIC_AUTHORIZATION_FAILED'),
      new ProtocolError('CLUSTER_AUTHORIZATION_FAILED'),
      new ProtocolError('SASL_AUTHENTICATION_FAILED'),
      new ProtocolError('UNSUPPORTED_VERSION'),
      new AuthenticationError('bad credentials'),
      new UnsupportedApiError('Produce v13 is not supported'),
    ]) {
      const e = kafkaError(err, 'cannot send');
      expect(e).toBeInstanceOf(ParityError);
      expect(e.code).toBe('PARITY_KAFKA');
      expect(e.retriable, err.message).toBe(false);
      expect(e.hint).toBeTruthy();
      expect(e.message).toMatch(/^cannot send: /);
    }
  });

  it('finds a fatal error inside an aggregate response error', () => {
    const err = new ResponseError(0, 9, { '/responses/0/partitions/0': [29, null] }, {});
    expect(fatalKafkaHint(err)).toMatch(/WRITE/);
    expect(kafkaError(err, 'x').retriable).toBe(false);
  });

  it('leaves transient failures retriable', () => {
    for (const err of [
      new ProtocolError('NOT_LEADER_OR_FOLLOWER'),
      new ProtocolError('COORDINATOR_LOAD_IN_PROGRESS'),
      new NetworkError('socket hang up'),
      new Error('ECONNREFUSED'),
    ]) {
      expect(kafkaError(err, 'x').retriable, err.message).toBe(true);
    }
  });

  it('passes a ParityError through unchanged', () => {
    const original = new ParityError('PARITY_BAD_INPUT', 'no such topic');
    expect(kafkaError(original, 'x')).toBe(original);
  });
});

describe('produceFailure (the hand-written produce path)', () => {
  it('is retriable for a transient broker error and not for authorization or an unsupported version', () => {
    expect(produceFailure(new ProduceError('NOT_LEADER_OR_FOLLOWER', 6), 10).retriable).toBe(true);
    expect(produceFailure(new Error('Kafka broker closed the connection'), 10).retriable).toBe(true);
    expect(produceFailure(new ProduceError('TOPIC_AUTHORIZATION_FAILED', 29), 10).retriable).toBe(false);
    expect(produceFailure(new ProduceError('CLUSTER_AUTHORIZATION_FAILED', 31), 10).retriable).toBe(false);
    expect(produceFailure(new ProduceError('UNSUPPORTED_VERSION', 35), 10).retriable).toBe(false);
    expect(produceFailure(new ProduceError('SASL_AUTHENTICATION_FAILED', 58), 10).retriable).toBe(false);
  });
});
