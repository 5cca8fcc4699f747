/** Small dense-vector helpers shared by the feature extractors and methods. */

/** Divides `v` by its Euclidean norm (sum of squares accumulated in float64; the zero vector stays zero); returns `v`. */
export function l2NormalizeInPlace(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  if (s > 0) {
    const inv = 1 / Math.sqrt(s);
    for (let i = 0; i < v.length; i++) v[i]! *= inv;
  }
  return v;
}
