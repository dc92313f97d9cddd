//===- Passes.td - nibble transformation passes --------------------------===//

#ifndef NIBBLE_PASSES_TD
#define NIBBLE_PASSES_TD

include "mlir/Pass/PassBase.td"

def NibbleConvertFromQuant : Pass<"nibble-convert-from-quant", "func::FuncOp"> {
  let summary = "Convert upstream quant.qcast/dcast on !quant.uniform into nibble ops";
  let description = [{
    Rewrites `quant.qcast` and `quant.dcast` whose quantized type is
    `!quant.uniform` (per tensor, per axis or sub-channel blocks, full
    integer storage range) into `nibble.quantize` / `nibble.dequantize`. The
    scales and zero points that upstream keeps inside the type become
    `arith.constant` SSA tensors:

    `tensor<4x8x!quant.uniform<i8:f32, 0.5:3>>` ->
    `!nibble.qtensor<4x8, #nibble.scheme<#nibble.int<8, signed>, per_tensor, scale = f32, zero_point = i32>>`
    with scales `dense<0.5> : tensor<1x1xf32>` and zero points
    `dense<3> : tensor<1x1xi32>` (a scheme without zero points when every
    zero point is 0). Types that cannot be expressed (narrow storage ranges,
    quantized values crossing block boundaries) are reported as errors.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::nibble::NibbleDialect"];
}

def NibbleConvertToQuant : Pass<"nibble-convert-to-quant", "func::FuncOp"> {
  let summary = "Convert nibble quantize/dequantize with constant scales into upstream quant ops";
  let description = [{
    The inverse of `nibble-convert-from-quant` for the schemes upstream can
    express: integer formats (MLIR 22's `!quant.uniform` stores integers
    only), f32 scales given by `arith.constant`, integer zero points given by
    `arith.constant` or none, per tensor / per channel / groups / 2-D blocks.
    A `nibble.quantize` whose every user is a `nibble.dequantize` with the
    same scales becomes `quant.qcast` + `quant.dcast`. Anything else is left
    alone with a remark explaining why (unless `strict`, then it is an error).
  }];
  let options = [
    Option<"strict", "strict", "bool", /*default=*/"false",
           "Fail on ops that cannot be expressed with !quant.uniform">,
  ];
  let dependentDialects = ["::mlir::quant::QuantDialect"];
}

def NibbleLowerToLinalg : Pass<"nibble-lower-to-linalg", "ModuleOp"> {
  let summary = "Reference lowering of nibble ops to linalg/arith/tensor (the numerical oracle)";
  let description = [{
    Lowers `nibble.constant`, `nibble.quantize`, `nibble.dequantize` and
    `nibble.matmul` to `linalg.generic` on tensors, following the dialect's
    semantics literally and through `NumberFormatAttrInterface` only:
    decode is a table lookup over all 2^bits codes, encode a branchless
    binary search over the rounding thresholds of the format (both tables come
    from the format library), so every format, including ones written only in
    IR, lowers without C++ changes. `!nibble.qtensor<S, scheme>` becomes
    `tensor<S x i8>` holding one code per element; packed constants are
    unpacked. `nibble.observe` probes are dropped (`probes=drop`) or become
    calls (`probes=call`, see nibble-insert-probes). Matmul dequantizes the
    weight and multiplies in f32 in ascending k order. This is not a fast
    path: it is what every backend is compared against.
  }];
  let options = [
    Option<"probes", "probes", "std::string", /*default=*/"\"drop\"",
           "nibble.observe: drop | call (@nibble_observe_f32(id, tensor<*xf32>),"
           " ids indexing the module attribute nibble.probes)">,
    Option<"weightsDir", "weights-dir", "std::string", /*default=*/"\"\"",
           "Directory against which relative #nibble.external paths are resolved">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::tensor::TensorDialect"];
}


def NibbleBindWeights : Pass<"nibble-bind-weights", "ModuleOp"> {
  let summary = "Attach checkpoint tensors to the dense_resource weights of float IR";
  let description = [{
    Float IR made by `quant-import --emit-ir` names its weights
    (`dense_resource<model.layers.0.self_attn.q_proj.weight>`) without their
    bytes. This pass opens the checkpoint given by `model` (a Hugging Face
    directory or a llama2.c file), checks that every referenced tensor exists
    with the shape and element type the IR expects, and attaches its bytes,
    so that the module can be lowered and run (for example with
    `nibble-reference-to-llvm` and mlir-runner).
  }];
  let options = [
    Option<"modelPath", "model", "std::string", /*default=*/"",
           "Checkpoint to read the weights from">,
  ];
}


def NibbleQuantizeWeights : Pass<"nibble-quantize-weights", "ModuleOp"> {
  let summary = "Quantize the weights of float linears into nibble.matmul";
  let description = [{
    Rewrites every `linalg.matmul` tagged `nibble.linear = "NAME"` (float IR
    from `quant-import`, weights bound with `nibble-bind-weights`) whose
    weight is a `dense_resource` constant into
    `nibble.constant` (packed codes) + scales (+ zero points) +
    `nibble.matmul`, computing codes and scales with the rounding library:

    * `method=rtn`: round to nearest; `rtn-mse`: with an MSE-optimal clip
      ratio per group; `imatrix`: clip search weighted by the calibrated
      mean x^2 of each input channel; `gptq`: GPTQ with the calibrated
      Hessian (`damp`, `act-order`); `awq`: activation-aware per-channel
      scales searched on the calibrated X^T X, then a weighted clip search;
      the inverse scale is applied to the matmul input by an explicit
      elementwise op.
    * `format`: `int2`..`int8`, `uint2`..`uint8`, a float name (`e2m1fn`,
      `e4m3fn`, ...), `nf4`, or any format attribute text (`#nibble...`).
    * `group`: columns per group (0: per output channel); `symmetric`.
    * `stats`: the calibration statistics file (`quant-calibrate`), needed by
      imatrix, gptq and awq.
    * `recipe`: a JSON file of per-layer rules (docs/recipes.md); the first
      rule whose regex matches the layer name decides its method, format,
      group and symmetry, or `"skip": true` to keep it in float. Layers no
      rule matches use the pass options.

    Codes, scales and zero points are stored as resource blobs named
    `NAME.codes`, `NAME.scales`, `NAME.zero_points`. Each new
    `nibble.matmul` records what was lost and what it costs, for the
    quantization card: `nibble.weight_error` (relative squared error
    ||W - Q||^2 / ||W||^2 of the weights it quantized; absent for unfolded
    AWQ, whose codes stand for rescaled weights) and
    `nibble.bits_per_weight` (code bits plus the stored bits of scale (32,
    or 8 for e8m0/e4m3 scales), and 32 of zero point, per group). A linear that appears in several functions of
    the module is quantized once.
  }];
  let options = [
    Option<"method", "method", "std::string", /*default=*/"\"rtn\"",
           "rtn | rtn-mse | imatrix | gptq | awq">,
    Option<"format", "format", "std::string", /*default=*/"\"int4\"",
           "Element format of the weights">,
    Option<"group", "group", "int64_t", /*default=*/"32",
           "Columns per group (0: per output channel)">,
    Option<"symmetric", "symmetric", "bool", /*default=*/"true",
           "Symmetric (no zero points); false needs an integer format">,
    Option<"scale", "scale", "std::string", /*default=*/"\"f32\"",
           "Group scale storage: f32 | e8m0 (MX power-of-two scales) | e4m3 "
           "(NVFP4-style e4m3 scales times one f32 scale per tensor)">,
    Option<"statsPath", "stats", "std::string", /*default=*/"",
           "Calibration statistics file">,
    Option<"damp", "damp", "double", /*default=*/"0.01",
           "GPTQ dampening, a fraction of the mean Hessian diagonal">,
    Option<"actOrder", "act-order", "bool", /*default=*/"false",
           "GPTQ: quantize columns by decreasing Hessian diagonal">,
    Option<"recipePath", "recipe", "std::string", /*default=*/"",
           "Per-layer recipe file (JSON)">,
    Option<"progress", "progress", "bool", /*default=*/"false",
           "Per-layer progress on stderr (a bar with ETA on a terminal, "
           "plain lines otherwise)">,
  ];
  let dependentDialects = ["::mlir::nibble::NibbleDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect"];
}

def NibbleEmitObject : Pass<"nibble-emit-object", "ModuleOp"> {
  let summary = "Compile an LLVM-dialect module to an object file or shared library";
  let description = [{
    Translates the module (fully in the LLVM dialect, e.g. after
    `nibble-reference-to-llvm`) to LLVM IR, optimizes it at -O3 for the
    named target and writes an ELF object (`kind=object`) or a shared
    library linked by ld.lld (`kind=shared`) to `output`, atomically
    (temporary file, then rename). The module is left unchanged.
    `nibble-compile` is the whole pipeline from nibble IR.
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"native\"",
           "Target: native, a CPU name with +feature / ,-feature, or "
           "aarch64[:cpu] (as nibble-generate-kernels)">,
    Option<"output", "output", "std::string", /*default=*/"",
           "Output file">,
    Option<"kind", "kind", "std::string", /*default=*/"\"object\"",
           "object or shared">,
  ];
}

def NibbleGenerateKernels : Pass<"nibble-generate-kernels", "ModuleOp"> {
  let summary = "Generate vector-dialect CPU kernels for eligible nibble.matmul";
  let description = [{
    Replaces each eligible `nibble.matmul` by a call to a generated kernel
    function in the vector dialect (one per shape and scheme), with its
    weights repacked at compile time into the kernel's layout (recorded in
    the scheme's layout attribute, as `nibble.scheme` on the byte
    constant). Kernels take an output row range so a runtime can split
    rows over threads. The target's features decide the path:

    * weight-only (no `act_format`): integers of any width (signed, or
      unsigned, with zero points stored as f32, f16, bf16, i8, i16 or
      i32), fp8 e4m3fn / e5m2, other signed 5- to 8-bit floats (the fnuz
      fp8s, custom ones; a byte a code), fp6 e2m3fn / e3m2fn and any
      format of at most 16 codes (a table looked up with a vector
      permute); layouts `int4-interleave32`, `int8-dense`, `code6-split64`,
      ... (docs/formats.md); scales per group of a multiple of the kernel's
      step (32 codes for nibbles, 64 for fp6, 16 for bytes), or of 16 / 32
      codes dividing it (each 16-code run of a step scaled by its own
      group), or per row, stored as f32, f16 or bf16 (widened per group),
      or 8-bit codes (E8M0 of the MX formats, e4m3 / e5m2, or a two-level
      scheme's 8-bit codes with one f32 scale per tensor, e.g. NVFP4-style)
      looked up in a 256-entry f32 table; f32 FMA; the weight stream is
      prefetched 4 KiB ahead (`prefetchnta` on x86); needs vector FMA
      (AVX2+FMA, AVX-512, NEON). Where N is a multiple of the vector's f32
      lanes R (16 / 8 / 4), the group a multiple of 16 and the zero points
      (if any) constants, the weights are row-tiled instead: integers in
      bytes on every target (`int8-coltile16`, `uint8-coltile8`, ...: R
      codes of one column per load, widened and converted), and on AVX-512
      every format in nibbles, integers and tables alike
      (`int4-rowtile16`, `code4-rowtile16`: one `vpermps` of the 16-entry
      table per 16 rows' codes); one FMA against the column's activation,
      broadcast, advances R rows; scales and zero points tiled
      [N/R * K/G, R] (one row per tile and group) like the integer-dot
      kernels'.
    * integer dot (`act_format` = signed int8, dynamic or static `act_scale`,
      i.e. W8A8 and W4A8): activations quantized once per input value by a
      generated row quantizer, then 8-bit dot products: `vpdpbusd` on
      AVX-512 VNNI (zmm) or AVX-VNNI (ymm), with weights stored
      offset-binary and a per-group activation-sum correction (which also
      takes the zero points of uint4 / uint8 weights); NEON `sdot` with
      `dotprod`. Scales and zero points stored as for weight-only.
      Where N is a multiple of the instruction's i32 lanes (16 / 8 / 4),
      the group a multiple of 16 and the zero points (if any) constants,
      the weights are row-tiled (`int4-rowtile16-offset`,
      `int8-rowtile8-offset`, `int4-rowtile4`, ...): each vector load holds
      4 bytes of each of lanes rows and one dot product against four
      broadcast activations advances all of them; the scales and zero
      points are tiled alike ([N/lanes * K/G, lanes] constants, one row
      per tile and group, in the weights' order). Rows whose tile of
      weights would evict the row's activation codes from L1 before the
      next tile reads them (more than `k-panel-bytes` of weights, codes
      and scales per tile; 16 KiB, half a 32 KiB L1) are cut into K panels
      of equal numbers of groups (the last shorter): the kernel runs every
      tile over one panel before the next, carrying partial sums in y,
      and the weights, scales and zero points are stored panel after
      panel (`int4-rowtile16-offset-kpanel1664`, ...: the panel's columns).
      Otherwise
      one row at a time (`int4-interleave128-offset` on zmm,
      `int4-interleave64-offset` on ymm, `int4-interleave32` on NEON,
      `int8-dense`), where the group must be a multiple of the block
      (128 / 64 / 32 codes for int4, half that for int8). Without a
      dot-product feature, or with a group neither layout takes, a remark
      says why the matmul keeps the reference lowering.

    Both need an f32 input [M, K] with M <= 32. Other matmuls keep the
    reference lowering. Scales shared by several output rows, `per_tensor`
    or 2-D blocks `block<R x C>` (constant scales and zero points), take
    the same kernels: each row of scales (and zero points) is repeated at
    compile time for the rows that share it (`<linear>.scales.per_row`,
    or straight into the row-tiled `<linear>.scales.rowtile<R>`), so
    per_tensor reads as per-channel and a block as groups of C.

    Epilogues: when the matmul's only user is an element-wise
    `linalg.generic` over its [M, N] result (bias, residual add, SwiGLU's
    silu(gate) * up, scaling; other inputs indexed by rows and/or columns,
    a body of arith/math ops), the body is fused into the kernel's store
    and the generic disappears: the output is written once, transformed.
    The call then sits where the generic was, so the generic's other
    inputs (e.g. the up projection for SwiGLU) are available.

    Activation quantization: when a kernel's output (after its epilogue)
    is read by an integer-dot matmul with a static `act_scale` (e.g. the
    SwiGLU output feeding the down projection under `quant-compile
    --act-mode static`), the kernel also writes the int8 codes and their
    per-group sums in its store, with the quantizer's arithmetic, and that
    matmul reads them: no separate pass over the activations. Its row
    ranges are then aligned to the group (`nibble.row_align`). A dynamic
    scale needs the whole row's maximum first, so it keeps the quantizer.
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"native\"",
           "Target: native, a CPU name (znver4, x86-64-v3, ...) with "
           "+feature / ,-feature, or aarch64[:cpu]">,
    Option<"fuseEpilogues", "fuse-epilogues", "bool", /*default=*/"true",
           "Fuse element-wise consumers into the kernels' stores">,
    Option<"rowTile", "row-tile", "bool", /*default=*/"true",
           "Kernels in the row-tiled layouts where they apply (false: one "
           "row at a time, for comparison)">,
    Option<"kPanelBytes", "k-panel-bytes", "int64_t", /*default=*/"16384",
           "L1 bytes one K panel of a row-tiled integer-dot kernel may "
           "take between two reads of an activation code (one tile's "
           "weights, activation codes and scales over the panel); rows "
           "longer than that are cut into panels (0: never)">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::func::FuncDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::vector::VectorDialect",
                           "::mlir::LLVM::LLVMDialect",
                           "::mlir::bufferization::BufferizationDialect"];
}

def NibbleInsertProbes : Pass<"nibble-insert-probes", "ModuleOp"> {
  let summary = "Insert calibration probes on the inputs of linears";
  let description = [{
    Inserts `nibble.observe "NAME" %x` before every linear (`linalg.matmul`
    or `nibble.matmul` tagged `nibble.linear = "NAME"`) whose name matches
    `match`, on its input x. Lowered with
    `nibble-lower-to-linalg{probes=call}` (or
    `nibble-reference-to-llvm{probes=call}`), each probe calls
    `nibble_observe_f32(id, x)` at run time; the calibration library's
    implementation (nibble/Calibration/Probes.h) accumulates the statistics
    file that `nibble-quantize-weights`, `nibble-smooth`, ... consume.
  }];
  let options = [
    Option<"match", "match", "std::string", /*default=*/"\"\"",
           "Regex on layer names (empty: all)">,
  ];
  let dependentDialects = ["::mlir::nibble::NibbleDialect"];
}

def NibbleSmooth : Pass<"nibble-smooth", "ModuleOp"> {
  let summary = "SmoothQuant / AWQ per-channel scales, folded into the producer";
  let description = [{
    For every set of float linears (`linalg.matmul` tagged `nibble.linear`,
    weights bound) that read the same input x, computes one per-input-channel
    scale vector s from calibration statistics, multiplies the weight
    columns by s and divides x by s where x is produced:

    * x from an RMSNorm (`nibble.norm`, e.g. q/k/v after the attention norm,
      gate/up after the FFN norm, lm_head after the final norm): the norm
      weight is divided by s;
    * x linear in the rows of another linear (`nibble.input_producer`:
      o_proj in v_proj, down_proj in up_proj): those rows are divided by s.
      With grouped-query attention an o_proj input channel (h, d) reads v
      row (h / G, d), so s is made equal over each such class of channels
      (AWQ searches with the classes tied; SmoothQuant takes the geometric
      mean) and the fold is exact;
    * otherwise (or `fold=false`) an explicit elementwise multiply by 1/s is
      inserted before the linears.

    `method=smoothquant`: s_j = max|x_j|^alpha / max|W[:, j]|^(1-alpha)
    (Xiao et al.), for W8A8. `method=awq`: s = mean|x|^a with a searched on
    a grid to minimise the joint output error of the linears sharing x
    under the weight scheme `format`/`group`/`symmetric` (Lin et al.),
    computed from the calibrated X^T X. Follow with
    `nibble-quantize-weights{method=imatrix}` for AWQ's weighted clip search.

    Each rewritten linear records the channel multiplier its input now
    carries (`nibble.input_multiplier`, 1/s composed with earlier ones) so
    that later passes transform its statistics, and `nibble.smoothing`
    (method and alpha). New weights are stored as f32 resources
    `NAME.weight.smoothed` (norm weights keep their element type).
  }];
  let options = [
    Option<"method", "method", "std::string", /*default=*/"\"smoothquant\"",
           "smoothquant | awq">,
    Option<"alpha", "alpha", "double", /*default=*/"0.5",
           "SmoothQuant migration strength in [0, 1]">,
    Option<"statsPath", "stats", "std::string", /*default=*/"",
           "Calibration statistics file (required)">,
    Option<"format", "format", "std::string", /*default=*/"\"int4\"",
           "AWQ: weight format the search quantizes to">,
    Option<"group", "group", "int64_t", /*default=*/"32",
           "AWQ: columns per group (0: per output channel)">,
    Option<"symmetric", "symmetric", "bool", /*default=*/"true",
           "AWQ: symmetric weight quantization">,
    Option<"scale", "scale", "std::string", /*default=*/"\"f32\"",
           "AWQ: group scale storage (f32 | e8m0 | e4m3)">,
    Option<"grid", "grid", "int64_t", /*default=*/"20",
           "AWQ: number of alpha values searched in [0, 1)">,
    Option<"recipePath", "recipe", "std::string", /*default=*/"",
           "AWQ: the nibble-quantize-weights recipe, for per-layer schemes">,
    Option<"fold", "fold", "bool", /*default=*/"true",
           "Fold 1/s into the producer where the graph allows">,
    Option<"progress", "progress", "bool", /*default=*/"false",
           "Per-input-set progress on stderr (bar with ETA on a terminal)">,
    Option<"match", "match", "std::string", /*default=*/"\"\"",
           "Regex on layer names: smooth only input sets whose first linear "
           "matches (empty: all)">,
  ];
  let dependentDialects = ["::mlir::nibble::NibbleDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect"];
}

def NibbleSplitOutliers : Pass<"nibble-split-outliers", "ModuleOp"> {
  let summary = "Keep outlier input channels of float linears in high precision";
  let description = [{
    LLM.int8()-style decomposition, static from calibration: for every float
    linear (`linalg.matmul` tagged `nibble.linear`) the input channels whose
    calibrated max |x| exceeds `threshold` are outliers. The linear becomes

        y = (x * mask) W_in^T + x[:, outliers] W_out^T

    where `mask` zeroes the outlier channels and W_in is W with those columns
    zeroed (still tagged `nibble.linear`, so `nibble-quantize-weights` and
    `nibble-quantize-activations` quantize it, and activation scales no
    longer see the outliers), and W_out [n, #outliers] is kept in
    `outlier-type` (f16 or f32) in a small float matmul tagged
    `nibble.outlier_part`. The channels are recorded as
    `nibble.outlier_channels` and the mask in `nibble.input_multiplier`.
  }];
  let options = [
    Option<"threshold", "threshold", "double", /*default=*/"6.0",
           "Channels with calibrated max |x| above this are outliers">,
    Option<"statsPath", "stats", "std::string", /*default=*/"",
           "Calibration statistics file (required)">,
    Option<"outlierType", "outlier-type", "std::string", /*default=*/"\"f16\"",
           "Element type of the outlier weight slice: f16 | f32">,
    Option<"match", "match", "std::string", /*default=*/"\"\"",
           "Regex on layer names (empty: all)">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect"];
}

def NibbleQuantizeActivations : Pass<"nibble-quantize-activations", "ModuleOp"> {
  let summary = "Quantize the activations of nibble.matmul (W8A8, W4A8)";
  let description = [{
    Sets `act_format` on every `nibble.matmul` tagged `nibble.linear` (whose
    name matches `match`), so its input is quantized symmetrically to
    `format` before the product:

    * `mode=dynamic`: per token, scale max|x_row| / max(format), computed at
      run time;
    * `mode=static`: per tensor, one scale absmax / max(format) from the
      calibration statistics (`stats`) of the input as it is now (after
      smoothing; masked outlier channels excluded), stored as `act_scale`.
      `percentile` < 1 takes absmax from the calibrated |x| histogram
      instead (not available after smoothing or outlier splitting, which
      change the distribution the histogram recorded).
  }];
  let options = [
    Option<"mode", "mode", "std::string", /*default=*/"\"dynamic\"",
           "dynamic (per token) | static (per tensor, calibrated)">,
    Option<"format", "format", "std::string", /*default=*/"\"int8\"",
           "Activation format (int8, int4, e4m3fn, ...)">,
    Option<"statsPath", "stats", "std::string", /*default=*/"",
           "Calibration statistics file (static mode)">,
    Option<"percentile", "percentile", "double", /*default=*/"1.0",
           "Static mode: quantile of |x| used as absmax (1: the maximum)">,
    Option<"match", "match", "std::string", /*default=*/"\"\"",
           "Regex on layer names (empty: all)">,
  ];
}


def NibbleDropInPlaceResults : Pass<"nibble-drop-in-place-results", "ModuleOp"> {
  let summary = "Drop the results of step functions that are their own updated arguments";
  let description = [{
    A KV-cache step function (`nibble.in_place_results`, made by the float
    model builder) returns its updated caches and logits, which
    bufferization writes in place into the argument buffers. After
    `one-shot-bufferize`, this pass checks that every returned memref *is*
    a function argument and removes the results, so the compiled entry
    point has the runtime's signature (arguments only, no allocation
    handed back). A result that bufferization could not place in its
    argument is an error naming the function and the argument.

    Generated kernels (`nibble.kernel`) get the same treatment where every
    result is one of their arguments (destination-passing style): the
    results leave the signature and each call site uses the argument it
    passed instead. A kernel then hands back no buffer, so freeing
    temporaries needs no clone of its output.
  }];
}

def NibbleDeallocateTemporaries
    : Pass<"nibble-deallocate-temporaries", "ModuleOp"> {
  let summary = "Free the temporaries of every function except generated kernels";
  let description = [{
    Runs MLIR's ownership-based buffer deallocation on each function with a
    body, except the generated kernels (`nibble.kernel`): their bodies call
    LLVM intrinsics, which have no declared memory effects and which the
    ownership analysis therefore rejects. Kernels write into their
    destination arguments (`nibble-drop-in-place-results` has removed their
    results); each scratch buffer a kernel allocates is freed at the end of
    the block that allocates it, after checking that no alias of it (a loop
    result carrying it, a view, a cast) leaves that block. A kernel that
    still returns a buffer, or whose scratch escapes, is an error naming
    it. Use it where `buffer-deallocation-pipeline`
    would run, followed by that pipeline's clean-up passes
    (`buffer-deallocation-simplification`,
    `bufferization-lower-deallocations`).
  }];
  let dependentDialects = ["mlir::bufferization::BufferizationDialect",
                           "mlir::memref::MemRefDialect",
                           "mlir::scf::SCFDialect"];
}

def NibbleParallelizeKernelCalls
    : Pass<"nibble-parallelize-kernel-calls", "ModuleOp"> {
  let summary = "Split the output rows of generated kernel calls over the runtime's thread pool";
  let description = [{
    Runs on the LLVM dialect (after `convert-func-to-llvm`). Generated
    matmul kernels take a range of output rows [n0, n1) and record where it
    is among their LLVM arguments (`nibble.row_range`) and the work per row
    (`nibble.row_work`, the reduction length) and, for a kernel whose
    ranges must cover whole blocks of rows, their size (`nibble.row_align`,
    combined with `align` by least common multiple). A call over all N rows whose
    N x work is at least `min-work` becomes

        llvm.call @__nibble_parallel_for(@KERNEL_rows, %ctx, N, align)

    where `%ctx` is a stack record of the call's other arguments (allocated
    once in the caller's entry block) and `@KERNEL_rows(ctx, n0, n1)` calls
    the kernel on one range. The internal `__nibble_parallel_for` calls
    through the exported global `nibble_parallel_for_hook`, which
    `libnibble_runtime.so` sets to its `nibble_parallel_for` after loading
    the code (docs/runtime.md: it splits [0, N) into ranges aligned to
    `align` rows over the calling session's pool); while the hook is null
    (code run outside the runtime) the task runs once on [0, N). No symbol
    is left for the dynamic linker to resolve, so the code loads whichever
    way the host loaded the runtime. Row ranges never change a row's
    arithmetic, so results do not depend on the thread count. Smaller calls
    stay serial: waking threads costs more than they save.
  }];
  let options = [
    Option<"minWork", "min-work", "int64_t", /*default=*/"262144",
           "Rows x reduction length below which a call stays serial">,
    Option<"align", "align", "int64_t", /*default=*/"16",
           "Row ranges start at multiples of this">,
  ];
  let dependentDialects = ["mlir::LLVM::LLVMDialect"];
}

def NibbleGenerateGpuKernels : Pass<"nibble-generate-gpu-kernels", "ModuleOp"> {
  let summary = "Generate NVIDIA GPU GEMV kernels (gpu dialect) for weight-only nibble.matmul";
  let description = [{
    For every `nibble.matmul` with int4 / int8 signed or fp8 e4m3fn / e5m2
    weights in groups along the input dimension (f32 scales, no zero
    points), f16, bf16 or f32 activations and at most 32 activation rows,
    emits a `gpu.func` kernel for `chip` into `gpu.module @nibble_gpu` (one
    per distinct shape; the module records the chip as `nibble.chip`) and
    records it on the matmul as `nibble.gpu_kernel`. Matmuls outside that
    set get a remark naming the reason and are left alone.

    Kernel ABI (bare pointers): `(x: memref<M x K x T>, w: memref<N x
    K*bits/32 x i32>, scales: memref<N x K/G x f32>, y: memref<M x N x f32>)`,
    launched with `ceil(N / rows-per-block)` blocks of `32 x rows-per-block`
    threads. One warp computes one output row for all M activation rows:
    each lane loads 128 bits of codes at a time (`ld.global.v4`: 32 int4 or
    16 8-bit codes), turns each code into f32, multiplies with the
    activations (128-bit loads) in f32 FMAs (`llvm.intr.fma`), applies the
    group scale once per 128-bit chunk, and the warp reduces with
    `shfl.sync.bfly`.

    Decoding: integers with the magic-number trick
    (`bitcast(0x4B000000 | u) - (2^23 + 2^(bits-1))`); fp8 on sm_89 and
    later with `cvt.rn.f16x2.e4m3x2` / `.e5m2x2` (two codes per
    instruction); fp8 below sm_89 (where ptxas rejects those) in software:
    two bytes at a time become f16 bit patterns with shifts and masks (e5m2
    is the top byte of an f16; e4m3fn reads as the value times 2^-8, which
    the kernel folds into the scale), then `cvt.f32.f16`.

    Weight layout (recorded on the kernel as `nibble.weight_layout`): codes
    packed LSB-first into 32-bit words, rows contiguous; integer codes in
    offset binary (`code + 2^(bits-1)`, i.e. two's complement with the sign
    bit flipped: `nvptx.offset-binary.lsb-first.i32`,
    `nibble::formats::repackForNvptx`), fp8 codes as stored
    (`nvptx.bytes.lsb-first.i32`). Chunks of 128 bits never straddle a
    group: G and K must be multiples of 128 / bits.
  }];
  let options = [
    Option<"rowsPerBlock", "rows-per-block", "int64_t", /*default=*/"4",
           "Output rows (warps) per thread block">,
    Option<"chip", "chip", "std::string", /*default=*/"\"sm_90\"",
           "NVIDIA architecture the kernels are for (sm_80, sm_90, sm_90a, ...)">,
  ];
  let dependentDialects = ["mlir::gpu::GPUDialect", "mlir::vector::VectorDialect",
                           "mlir::scf::SCFDialect", "mlir::LLVM::LLVMDialect",
                           "mlir::NVVM::NVVMDialect",
                           "mlir::memref::MemRefDialect"];
}

def NibbleGenerateGpuDecoderKernels
    : Pass<"nibble-generate-gpu-decoder-kernels", "ModuleOp"> {
  let summary = "Generate the non-matmul NVIDIA kernels of a Llama decode step";
  let description = [{
    Adds to `gpu.module @nibble_gpu` (created for `chip` if absent) the
    kernels a CUDA bundle runs besides its GEMVs, specialised for one model
    shape, one token at a time, f32 activations and an f32 KV cache laid out
    `layers x context x kv_heads x head_dim` (bare-pointer ABI; `i32`
    scalars; each kernel records `nibble.grid` and `known_block_size`):

    - `nibble_embed_v*_d*(table, x, token)`: one thread per element;
    - `nibble_rmsnorm_d*(x, w, y)`: one warp, a `shfl.sync.bfly` sum of
      squares, `sqrt.rn.f32`;
    - `nibble_rope_kv_*(q, k, v, cos, sin, k_cache, v_cache, pos, layer)`:
      one thread per rotated pair (interleaved or rotate-half pairs, tables
      `context x head_dim/2`); q in place, k rotated and v copied into the
      caches at `pos`;
    - `nibble_attention_*(q, k_cache, v_cache, out, pos, layer)`: one warp
      per query head over positions `0..pos` of its kv head, scores by a
      warp reduction, online softmax (running max and sum), `e^x` as
      `ex2.approx.f32` of `x log2 e`;
    - `nibble_swiglu_f*(gate, up, h)` and `nibble_add_d*(x, y)` (x += y).

    ```mlir
    // quant-opt --nibble-generate-gpu-decoder-kernels="vocab=512 dim=64 hidden=172 heads=8 kv-heads=4 head-dim=8 context=512 layers=5"
    ```
  }];
  let options = [
    Option<"chip", "chip", "std::string", /*default=*/"\"sm_90\"",
           "NVIDIA architecture the kernels are for (sm_80, sm_90, ...)">,
    Option<"vocab", "vocab", "int64_t", /*default=*/"0", "Vocabulary size">,
    Option<"dim", "dim", "int64_t", /*default=*/"0", "Model (residual) width">,
    Option<"hidden", "hidden", "int64_t", /*default=*/"0", "SwiGLU width">,
    Option<"heads", "heads", "int64_t", /*default=*/"0", "Query heads">,
    Option<"kvHeads", "kv-heads", "int64_t", /*default=*/"0",
           "Key/value heads (a divisor of heads)">,
    Option<"headDim", "head-dim", "int64_t", /*default=*/"0", "Head width (even)">,
    Option<"context", "context", "int64_t", /*default=*/"0",
           "Positions in the KV cache">,
    Option<"layers", "layers", "int64_t", /*default=*/"0", "Decoder layers">,
    Option<"eps", "eps", "double", /*default=*/"1e-5", "RMSNorm epsilon">,
    Option<"rope", "rope", "std::string", /*default=*/"\"rotate-half\"",
           "RoPE pairing: interleaved (llama2.c) or rotate-half (Hugging Face)">,
  ];
  let dependentDialects = ["mlir::gpu::GPUDialect", "mlir::scf::SCFDialect",
                           "mlir::LLVM::LLVMDialect",
                           "mlir::memref::MemRefDialect",
                           "mlir::arith::ArithDialect"];
}

def NibbleGpuToPtx : Pass<"nibble-gpu-to-ptx", "ModuleOp"> {
  let summary = "Lower the module's gpu.module kernels to PTX for an NVIDIA target";
  let description = [{
    Runs `gpu.module(convert-scf-to-cf, convert-vector-to-llvm,
    convert-gpu-to-nvvm{use-bare-ptr-memref-call-conv=true},
    reconcile-unrealized-casts)`, `nvvm-attach-target{chip features}` and
    `gpu-module-to-binary{format=isa}` (LLVM's NVPTX backend; no CUDA
    needed), then writes the PTX of every gpu.module to `output`
    (atomically; several modules are concatenated in order). sm_90 needs PTX
    8.0 (`features=+ptx80`, the default). A `gpu.module` generated for
    another chip (its `nibble.chip`) is refused, and so are hardware fp8
    conversions without the PTX version they need (7.8 on sm_90, 8.1 on
    sm_89: `features=+ptx81`).
  }];
  let options = [
    Option<"chip", "chip", "std::string", /*default=*/"\"sm_90\"",
           "NVIDIA architecture (sm_80, sm_90, sm_90a, ...)">,
    Option<"features", "features", "std::string", /*default=*/"\"+ptx80\"",
           "PTX ISA version feature">,
    Option<"output", "output", "std::string", /*default=*/"",
           "PTX file to write (required)">,
  ];
}

def NibbleExternalizeWeights : Pass<"nibble-externalize-weights", "ModuleOp"> {
  let summary = "Move constant weight buffers out of the code into one weights blob";
  let description = [{
    After bufferization, every constant of at least `min-bytes` bytes that
    a public function reads through `memref.get_global` moves into a
    weights blob: identical contents are stored once, each at a 64-byte
    aligned offset, and the function gains a trailing
    `memref<?xi8> {nibble.name = "weights"}` argument from which
    `memref.view` takes the tensor at its offset. The code then holds no
    weights; a bundle stores the blob as its own section, mapped at run
    time. The blob is written to `output` (atomically) and its layout is
    recorded on the module as `nibble.weights`
    (a dictionary of the blob size and, per moved global, its offset and
    size).
  }];
  let options = [
    Option<"output", "output", "std::string", /*default=*/"",
           "File to write the weights blob to (empty: only rewrite)">,
    Option<"minBytes", "min-bytes", "int64_t", /*default=*/"1024",
           "Constants smaller than this stay in the code">,
  ];
}

#endif // NIBBLE_PASSES_TD
