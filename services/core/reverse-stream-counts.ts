/**
 * The reverse stream check's counts (issue 23), as reverse sync's window store reads them and as the
 * status page shows them. It lives in the kernel because both need its shape and neither service may
 * import the other (lint:deps): the store maps the row once, the status page takes what the CLI's
 * reader hands it.
 */

/** The reverse stream check's counts since the window opened (every process's); `inFlight` as last stored. */
export interface StreamCounts {
  checked: number;
  matched: number;
  superseded: number;
  skipped: number;
  /** Confirmed drift: the old row stayed different from reverse(new) for the retry window. */
  confirmedDrift: number;
  /** Keys applied and not decided yet, when the counts were last stored. */
  inFlight: number;
  updatedAt: string | null;
}
