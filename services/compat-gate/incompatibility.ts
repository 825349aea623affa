/**
 * One reason a schema change breaks a reader. Both checkers (Avro resolution, JSON Schema diff) report
 * in this shape so the CLI, the registry comparison and the gate print them the same way.
 */
export interface Incompatibility {
  /**
   * The rule that failed, named as the reference implementation names it: Avro's
   * `SchemaIncompatibilityType` (e.g. `READER_FIELD_MISSING_DEFAULT_VALUE`) or Confluent's JSON Schema
   * `Difference.Type` (e.g. `MAX_LENGTH_DECREASED`). Stable: tests and dashboards match on it.
   */
  rule: string;
  /** What changed and why it breaks readers, for people. */
  message: string;
  /** The reference implementation's own terse wording, when it has one (Avro: `[C]`, `expected: 8, found: 4`). */
  detail?: string;
  /**
   * Where: a JSON pointer. Avro: into the reader schema (`/fields/1/type`), as Avro's own checker
   * reports it. JSON Schema: Confluent's path form (`#/properties/foo/maxLength`).
   */
  location: string;
  /** The record field or object property path (`address.postal_code`) when the location is in one. */
  fieldPath?: string;
}
