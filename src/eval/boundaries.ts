/**
 * Scoring task-free boundary detection against the stream's true task boundaries.
 *
 * Positions are stream samples seen before a batch: a true boundary is the first sample of a task after the first
 * (cumulative training sizes), a detection the position of the batch at which the learner switched (that batch
 * already trains the new subnet). Each true boundary b_k owns the segment [b_k, b_{k+1}): the first detection in
 * it is a hit with delay d − b_k samples (0 = no sample of the new distribution trained the old subnet); every
 * other detection — later ones in a segment, and any before the first true boundary — is false.
 */

export interface BoundaryScore {
  /** True boundaries (tasks − 1). */
  boundaries: number;
  found: number;
  missed: number;
  falseDetections: number;
  /** Delay in samples of each found boundary, in stream order. */
  delays: number[];
}

/** Scores `detected` against `trueStarts` (both stream positions; see the module doc). */
export function scoreBoundaries(trueStarts: readonly number[], detected: readonly number[]): BoundaryScore {
  for (const [name, xs] of [['trueStarts', trueStarts], ['detected', detected]] as const) {
    xs.forEach((v, i) => {
      if (!Number.isFinite(v) || v < 0) throw new Error(`scoreBoundaries: ${name}[${i}] is ${v}, expected a stream position ≥ 0`);
      if (i > 0 && v < xs[i - 1]!) throw new Error(`scoreBoundaries: ${name} must be ascending (${name}[${i}] = ${v} < ${xs[i - 1]})`);
    });
  }
  const delays: number[] = [];
  let used = 0;
  for (let k = 0; k < trueStarts.length; k++) {
    const lo = trueStarts[k]!;
    const hi = k + 1 < trueStarts.length ? trueStarts[k + 1]! : Infinity;
    const hit = detected.find((d) => d >= lo && d < hi);
    if (hit !== undefined) {
      delays.push(hit - lo);
      used++;
    }
  }
  const found = delays.length;
  return {
    boundaries: trueStarts.length,
    found,
    missed: trueStarts.length - found,
    falseDetections: detected.length - used,
    delays,
  };
}

/** The detections a method reports in its cost extras as `detectedAt:<k>` (stream positions), ascending. */
export function detectionsFromExtra(extra: Readonly<Record<string, number>> | undefined): number[] | null {
  if (!extra) return null;
  const keys = Object.keys(extra).filter((k) => /^detectedAt:\d+$/.test(k));
  if (keys.length === 0 && extra['detectedBoundaries'] === undefined) return null;
  return keys.map((k) => [Number(k.slice(11)), extra[k]!] as const).sort((a, b) => a[0] - b[0]).map(([, v]) => v);
}
