// The geometry of a 3-D convolution (NCDHW, weight [O, C, kd, kh, kw]), shared
// by the op (shape checks), the CPU kernels and the WebGPU kernels, so that
// every backend derives output extents and attributes the same way.

/** Kernel attributes of the three convolution kernels (always 3 entries each). */
export interface Conv3dAttrs {
  stride: number[];
  padding: number[];
  dilation: number[];
}
/** conv3dGradInput also needs the input's shape (the output is ambiguous for stride > 1). */
export interface Conv3dGradInputAttrs extends Conv3dAttrs {
  inputShape: number[];
}
/** conv3dGradWeight also needs the weight's shape. */
export interface Conv3dGradWeightAttrs extends Conv3dAttrs {
  weightShape: number[];
}

/** Output extent of a convolution along one axis: ⌊(n + 2p − d·(k−1) − 1) / s⌋ + 1. */
export function convOutputSize(n: number, k: number, stride = 1, padding = 0, dilation = 1): number {
  return Math.floor((n + 2 * padding - dilation * (k - 1) - 1) / stride) + 1;
}

/** Output extent of a transposed convolution along one axis: (n − 1)·s − 2p + d·(k − 1) + outputPadding + 1. */
export function convTransposeOutputSize(
  n: number,
  k: number,
  stride = 1,
  padding = 0,
  dilation = 1,
  outputPadding = 0,
): number {
  return (n - 1) * stride - 2 * padding + dilation * (k - 1) + outputPadding + 1;
}

/** Output spatial extents [D', H', W'] of conv3d for input [N, C, D, H, W] and weight [O, C, kd, kh, kw]. */
export function conv3dOutputSpatial(xShape: readonly number[], wShape: readonly number[], a: Conv3dAttrs): number[] {
  return [0, 1, 2].map((i) => convOutputSize(xShape[i + 2], wShape[i + 2], a.stride[i], a.padding[i], a.dilation[i]));
}

/** Sizes of one conv3d problem: input, weight and output extents, with the attributes. */
export interface ConvGeometry {
  N: number;
  C: number;
  O: number;
  D: number;
  H: number;
  W: number;
  kd: number;
  kh: number;
  kw: number;
  oD: number;
  oH: number;
  oW: number;
  stride: readonly number[];
  padding: readonly number[];
  dilation: readonly number[];
}

/** The geometry from the input shape, the weight shape and the output's spatial extents. */
export function convGeometry(
  xShape: readonly number[],
  wShape: readonly number[],
  ySpatial: readonly number[],
  a: Conv3dAttrs,
): ConvGeometry {
  const [N, C, D, H, W] = xShape;
  const [O, , kd, kh, kw] = wShape;
  const [oD, oH, oW] = ySpatial;
  return { N, C, O, D, H, W, kd, kh, kw, oD, oH, oW, stride: a.stride, padding: a.padding, dilation: a.dilation };
}
