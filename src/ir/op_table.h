/*
 * The op table: the single list of every op kiln knows. X(OnnxName, family).
 * It generates the kiln_op enum (KILN_OP_<OnnxName>), the name table and the family lookup. Adding an
 * op means one line here plus its case in the family's files (ir/ops/<family>.c for parse/infer,
 * backend/cpu/reference/<family>.c for the reference kernel).
 */
#ifndef KILN_IR_OP_TABLE_H
#define KILN_IR_OP_TABLE_H

#define KILN_OP_LIST(X)                                                                              \
  /* conv: convolutions */                                                                           \
  X(Conv, conv) X(ConvTranspose, conv)                                                               \
  /* norm: normalization */                                                                          \
  X(BatchNormalization, norm) X(InstanceNormalization, norm) X(LayerNormalization, norm) X(LRN, norm)  \
  /* activation: unary activations with parameters */                                                \
  X(Relu, activation) X(LeakyRelu, activation) X(PRelu, activation) X(Elu, activation)               \
  X(Selu, activation) X(Celu, activation) X(ThresholdedRelu, activation) X(Sigmoid, activation)      \
  X(HardSigmoid, activation) X(HardSwish, activation) X(Tanh, activation) X(Softplus, activation)    \
  X(Softsign, activation) X(Gelu, activation) X(Erf, activation) X(Clip, activation)                 \
  /* elementwise: arithmetic, math functions, variadic */                                            \
  X(Add, elementwise) X(Sub, elementwise) X(Mul, elementwise) X(Div, elementwise) X(Pow, elementwise)  \
  X(Mod, elementwise) X(Sqrt, elementwise) X(Exp, elementwise) X(Log, elementwise) X(Neg, elementwise) \
  X(Abs, elementwise) X(Reciprocal, elementwise) X(Floor, elementwise) X(Ceil, elementwise)           \
  X(Round, elementwise) X(Sign, elementwise) X(Sin, elementwise) X(Cos, elementwise)                 \
  X(Tan, elementwise) X(Asin, elementwise) X(Acos, elementwise) X(Atan, elementwise)                 \
  X(Sinh, elementwise) X(Cosh, elementwise) X(Asinh, elementwise) X(Acosh, elementwise)              \
  X(Atanh, elementwise) X(Min, elementwise) X(Max, elementwise) X(Mean, elementwise)                 \
  X(Sum, elementwise)                                                                                \
  /* logic: comparisons, boolean logic, tests, selection */                                          \
  X(Equal, logic) X(Less, logic) X(Greater, logic) X(LessOrEqual, logic) X(GreaterOrEqual, logic)    \
  X(Where, logic) X(Not, logic) X(And, logic) X(Or, logic) X(Xor, logic) X(IsNaN, logic)             \
  X(IsInf, logic)                                                                                    \
  /* matrix: matrix products */                                                                      \
  X(MatMul, matrix) X(Gemm, matrix) X(Einsum, matrix)                                                \
  /* pool: pooling and resampling */                                                                 \
  X(MaxPool, pool) X(AveragePool, pool) X(GlobalAveragePool, pool) X(GlobalMaxPool, pool)            \
  X(Resize, pool) X(Upsample, pool)                                                                  \
  /* shape: shape and layout */                                                                      \
  X(Concat, shape) X(Split, shape) X(Slice, shape) X(Reshape, shape) X(Flatten, shape)               \
  X(Squeeze, shape) X(Unsqueeze, shape) X(Transpose, shape) X(Expand, shape) X(Tile, shape)          \
  X(Pad, shape) X(DepthToSpace, shape) X(SpaceToDepth, shape) X(Trilu, shape)                        \
  /* index: gathers and scatters */                                                                  \
  X(Gather, index) X(GatherElements, index) X(GatherND, index) X(ScatterElements, index)             \
  X(ScatterND, index) X(OneHot, index) X(NonZero, index) X(Compress, index)                          \
  /* source: shape sources, constants, casts, pass-through */                                        \
  X(Shape, source) X(Size, source) X(Constant, source) X(ConstantOfShape, source) X(Range, source)   \
  X(Cast, source) X(CastLike, source) X(Identity, source) X(Dropout, source)                         \
  /* reduce: softmax family, reductions, scans, top-k, arg-reductions */                             \
  X(Softmax, reduce) X(LogSoftmax, reduce) X(Hardmax, reduce) X(ReduceMean, reduce)                  \
  X(ReduceSum, reduce) X(ReduceMax, reduce) X(ReduceMin, reduce) X(ReduceProd, reduce)               \
  X(ReduceL1, reduce) X(ReduceL2, reduce) X(ReduceSumSquare, reduce) X(ReduceLogSum, reduce)         \
  X(ReduceLogSumExp, reduce) X(CumSum, reduce) X(TopK, reduce) X(ArgMax, reduce) X(ArgMin, reduce)   \
  /* quant: quantization and integer ops */                                                          \
  X(QuantizeLinear, quant) X(DequantizeLinear, quant) X(DynamicQuantizeLinear, quant)                \
  X(QLinearConv, quant) X(QLinearMatMul, quant) X(ConvInteger, quant) X(MatMulInteger, quant)        \
  /* detect: detection post-processing */                                                            \
  X(NonMaxSuppression, detect)

/* Families: one parse/infer file (ir/ops/<family>.c) and one reference-kernel file each. */
#define KILN_FAMILY_LIST(X)                                                                          \
  X(conv) X(norm) X(activation) X(elementwise) X(logic) X(matrix) X(pool) X(shape) X(index)         \
  X(source) X(reduce) X(quant) X(detect)

#endif
