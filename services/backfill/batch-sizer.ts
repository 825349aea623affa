/**
 * Adaptive batch size, the pt-online-schema-change way (`--chunk-time`): after each batch the size
 * moves toward the number of rows that would have taken `targetSeconds`, within [min, max]. One step
 * may at most halve or double the size, so one slow batch (a lock wait, a checkpoint) cannot collapse
 * it and one fast batch cannot make the next one huge.
 *
 * Paced runs also give `targetWalBytes`: the size is then the smaller of the two ideals, so each
 * batch writes about that much WAL. That is what a concurrent OLTP commit waits for (it flushes the
 * WAL up to its own commit record, the batch's included), so it bounds the hit per commit whatever
 * the row width.
 */
export interface BatchSizerOptions {
  initial: number;
  min: number;
  max: number;
  targetSeconds: number;
  targetWalBytes?: number;
}

export class BatchSizer {
  private size: number;
  /** A size set by the operator (`ctl set batch-size=N`) wins over adaptation until cleared. */
  private pinned: number | undefined;

  constructor(private readonly options: BatchSizerOptions) {
    this.size = clamp(options.initial, options.min, options.max);
  }

  /** The size to use for the next batch. */
  get current(): number {
    return this.pinned ?? this.size;
  }

  get isPinned(): boolean {
    return this.pinned !== undefined;
  }

  /** Pins the size (operator override); `undefined` returns to adaptive sizing from the pinned value. */
  pin(size: number | undefined): void {
    if (size === undefined) {
      if (this.pinned !== undefined) this.size = clamp(this.pinned, this.options.min, this.options.max);
      this.pinned = undefined;
      return;
    }
    this.pinned = Math.max(1, Math.floor(size));
  }

  /**
   * Feeds back one batch: `rows` keys walked in `seconds`, writing `walBytes` of WAL (when
   * measured). A batch that hit the end of its range (fewer rows than asked) says nothing about the
   * right size and is ignored.
   */
  observe(rows: number, seconds: number, requested: number = this.current, walBytes: number | null = null): number {
    if (this.pinned !== undefined || rows < requested || rows <= 0 || seconds <= 0) return this.current;
    let ideal = (rows * this.options.targetSeconds) / seconds;
    const target = this.options.targetWalBytes;
    if (target !== undefined && walBytes !== null && walBytes > 0) ideal = Math.min(ideal, (rows * target) / walBytes);
    const damped = clamp(ideal, this.size / 2, this.size * 2);
    this.size = clamp(Math.round(damped), this.options.min, this.options.max);
    return this.size;
  }
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Math.round(value)));
}
