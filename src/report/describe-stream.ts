/** Per-task label histograms of a stream's training samples (what `moeclip stream --describe` prints). */
import type { Stream } from '../data/types.ts';

export interface StreamHistogram {
  /** Per task: global label (as a string key) → number of training samples, and the task size. */
  tasks: Array<{ classes: Record<string, number>; n: number }>;
  /** Training samples in the whole stream. */
  total: number;
}

/** Counts the training samples of every label in every task (labels sorted ascending). */
export function describeStream(stream: Pick<Stream, 'tasks'>): StreamHistogram {
  let total = 0;
  const tasks = stream.tasks.map((t) => {
    const counts = new Map<number, number>();
    for (const it of t.train) counts.set(it.label, (counts.get(it.label) ?? 0) + 1);
    const classes: Record<string, number> = {};
    for (const [c, n] of [...counts].sort((a, b) => a[0] - b[0])) classes[String(c)] = n;
    total += t.train.length;
    return { classes, n: t.train.length };
  });
  return { tasks, total };
}
