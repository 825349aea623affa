/**
 * What the compatibility gate reports: every problem as one finding, with enough context to act on it.
 * Registry checks, live-event checks and the semantic-changes rule all report findings; the gate
 * passes only when there are none.
 */
export type FindingKind =
  /** The candidate schema breaks a level's rule (local checker). */
  | 'incompatible'
  /** The registry and the local checker reach different verdicts for the same candidate. */
  | 'registry-disagreement'
  /**
   * The registry could not evaluate the candidate at all (HTTP 422), e.g. Apicurio 3.3's compatibility
   * endpoint with a Protobuf candidate that has schema references: its verdict is unknown, not "no".
   */
  | 'registry-refused'
  /** A registered version has another schema type than the spec declares. */
  | 'schema-type-mismatch'
  /** An event carries a schema id the registry does not know. */
  | 'unknown-schema-id'
  /** An event is not in the Confluent wire format (no magic byte 0 + 4-byte id). */
  | 'not-wire-format'
  /** An event's bytes do not decode with its own writer schema. */
  | 'undecodable'
  /** A consumer's reader schema cannot read events that are on the topic. */
  | 'consumer-cannot-read'
  /** A field changes meaning without the new name, new subject or marker the playbook requires. */
  | 'semantic-change';

export interface Finding {
  kind: FindingKind;
  subject?: string;
  topic?: string;
  consumer?: string;
  /** One sentence: what is wrong and what to do. */
  message: string;
  details?: Record<string, unknown>;
}
