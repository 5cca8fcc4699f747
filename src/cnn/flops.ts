/**
 * FLOPs of the CNN track, counted as the reference does: a forward pass costs 2 · MACs of the convolutions and
 * the head over the channels that take part (masked channels cost nothing), a training step 3 × its forward.
 */
import type { Owners } from './masks.ts';
import type { ResNetLayout } from './resnet.ts';

/** Forward FLOPs of one image through the channels of `subnets` (all channels when `owners` is null) and a K-class head. */
export function forwardFlops(layout: ResNetLayout, owners: Owners | null, subnets: ReadonlySet<number> | null, K: number): number {
  const active = (g: number): number => (owners && subnets ? owners[g]!.reduce((n, v) => n + (subnets.has(v) ? 1 : 0), 0) : layout.groups[g]!.channels);
  let macs = 0;
  for (const c of layout.convs) {
    const inC = c.inGroup < 0 ? c.inChannels : active(c.inGroup);
    macs += c.outSize * c.outSize * c.kernel * c.kernel * inC * active(c.outGroup);
  }
  macs += active(layout.featureGroup) * K;
  return 2 * macs;
}

/** Running totals of a run: inference, online training and offline retraining (fine-tuning, merges). */
export class FlopCounter {
  inference = 0;
  training = 0;
  retraining = 0;
  /** `images` through a forward costing `perImage` each. */
  infer(perImage: number, images: number): void {
    this.inference += perImage * images;
  }
  /** `images` through training steps (3 × forward). */
  train(perImage: number, images: number, offline = false): void {
    if (offline) this.retraining += 3 * perImage * images;
    else this.training += 3 * perImage * images;
  }
}
