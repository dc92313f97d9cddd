// RUN: quant-opt %s -split-input-file -verify-diagnostics

// expected-error@+1 {{invalid #nibble.int format: an integer format has 2..8 bits, but bits is 9}}
func.func @bad_width() attributes {f = #nibble.int<9, signed>} { return }

// -----

// expected-error@+1 {{expected 'signed' or 'unsigned', got 'sined'}}
func.func @bad_signedness() attributes {f = #nibble.int<4, sined>} { return }

// -----

// expected-error@+1 {{invalid #nibble.float format: nonfinite = nan_only requires nan = all_ones or nan = negative_zero, but nan is ieee}}
func.func @bad_float() attributes {f = #nibble.float<e4m3, nonfinite = nan_only, nan = ieee>} { return }

// -----

// expected-error@+1 {{expected a named float (e4m3fn, e5m2, ...) or 'eXmY', got 'fp8'}}
func.func @bad_float_name() attributes {f = #nibble.float<fp8>} { return }

// -----

// expected-error@+1 {{unknown #nibble.float field 'bias_'}}
func.func @bad_float_field() attributes {f = #nibble.float<e3m2, bias_ = 1>} { return }

// -----

// expected-error@+1 {{invalid #nibble.lut format: lookup table values must be strictly ascending, but value 2 is not above value 1}}
func.func @unsorted_lut() attributes {f = #nibble.lut<[0.0, 1.0, 0.5]>} { return }

// -----

// expected-error@+1 {{unknown lookup table 'nf5'}}
func.func @unknown_lut() attributes {f = #nibble.lut<nf5>} { return }

// -----

// expected-error@+1 {{scheme format must be a number format attribute}}
func.func @scheme_not_format() attributes {s = #nibble.scheme<42 : i32, per_tensor>} { return }

// -----

// expected-error@+1 {{scheme format must have at most 8 bits per code}}
func.func @scheme_wide_format() attributes {s = #nibble.scheme<#nibble.float<f16>, per_tensor>} { return }

// -----

// expected-error@+1 {{scale type must be f32, f16, bf16 or a builtin float of at most 8 bits (e.g. f8E8M0FNU), got 'i8'}}
func.func @bad_scale_type() attributes {s = #nibble.scheme<#nibble.int<4, signed>, per_tensor, scale = i8>} { return }

// -----

// expected-error@+1 {{expected granularity per_tensor, per_channel<axis>, group<axis, size> or block<RxC>, got 'per_row'}}
func.func @bad_granularity() attributes {s = #nibble.scheme<#nibble.int<4, signed>, per_row>} { return }

// -----

// expected-error@+1 {{scale_scheme may not itself have a scale_scheme (at most two levels)}}
func.func @three_levels() attributes {s = #nibble.scheme<#nibble.int<4, signed>, group<1, 32>, scale_scheme = #nibble.scheme<#nibble.int<8, signed>, per_tensor, scale_scheme = #nibble.scheme<#nibble.int<8, signed>, per_tensor>>>} { return }

// -----

// expected-error@+1 {{group size 32 does not divide dimension 1 of size 100 (shape 4x100)}}
func.func @group_not_dividing(%q: !nibble.qtensor<4x100, #nibble.scheme<#nibble.int<4, signed>, group<1, 32>>>) { return }

// -----

// expected-error@+1 {{per_channel axis 2 is out of range for rank 2 shape 4x64}}
func.func @axis_out_of_range(%q: !nibble.qtensor<4x64, #nibble.scheme<#nibble.int<4, signed>, per_channel<2>>>) { return }

// -----

// expected-error@+1 {{block size 32 does not divide dimension 0 of size 48 (shape 48x64)}}
func.func @block_not_dividing(%q: !nibble.qtensor<48x64, #nibble.scheme<#nibble.int<4, signed>, block<32x32>>>) { return }

// -----

!q = !nibble.qtensor<4x64, #nibble.scheme<#nibble.int<4, signed>, group<1, 32>>>
func.func @scale_shape(%x: tensor<4x64xf32>, %s: tensor<4x3xf32>) {
  // expected-error@+1 {{'nibble.quantize' op scales shape [4, 3] does not match [4, 2] required by the scheme's granularity on data shape [4, 64]}}
  %q = nibble.quantize %x scales(%s : tensor<4x3xf32>) : tensor<4x64xf32> -> !q
  return
}

// -----

!q = !nibble.qtensor<4x64, #nibble.scheme<#nibble.int<4, signed>, group<1, 32>, scale = f16>>
func.func @scale_type(%x: tensor<4x64xf32>, %s: tensor<4x2xf32>) {
  // expected-error@+1 {{'nibble.quantize' op scales element type 'f32' does not match the scheme's scale type 'f16'}}
  %q = nibble.quantize %x scales(%s : tensor<4x2xf32>) : tensor<4x64xf32> -> !q
  return
}

// -----

!q = !nibble.qtensor<4x64, #nibble.scheme<#nibble.int<4, signed>, group<1, 32>>>
func.func @zp_on_symmetric(%q: !q, %s: tensor<4x2xf32>, %z: tensor<4x2xi8>) {
  // expected-error@+1 {{'nibble.dequantize' op zero_points given but the scheme is symmetric (it has no zero_point type)}}
  %d = nibble.dequantize %q scales(%s : tensor<4x2xf32>) zero_points(%z : tensor<4x2xi8>) : !q -> tensor<4x64xf32>
  return
}

// -----

!q = !nibble.qtensor<4x64, #nibble.scheme<#nibble.int<4, unsigned>, group<1, 32>, zero_point = i8>>
func.func @missing_zp(%q: !q, %s: tensor<4x2xf32>) {
  // expected-error@+1 {{'nibble.dequantize' op the scheme has zero points of type 'i8' but no zero_points operand was given}}
  %d = nibble.dequantize %q scales(%s : tensor<4x2xf32>) : !q -> tensor<4x64xf32>
  return
}

// -----

!q = !nibble.qtensor<4x64, #nibble.scheme<#nibble.int<4, unsigned>, group<1, 32>, zero_point = i8>>
func.func @zp_shape(%q: !q, %s: tensor<4x2xf32>, %z: tensor<4x1xi8>) {
  // expected-error@+1 {{'nibble.dequantize' op zero_points shape [4, 1] does not match [4, 2]}}
  %d = nibble.dequantize %q scales(%s : tensor<4x2xf32>) zero_points(%z : tensor<4x1xi8>) : !q -> tensor<4x64xf32>
  return
}

// -----

!q = !nibble.qtensor<4x64, #nibble.scheme<#nibble.float<e2m1fn>, group<1, 16>, scale_scheme = #nibble.scheme<#nibble.float<e4m3fn>, per_tensor>>>
func.func @two_level_needs_qtensor_scales(%q: !q, %s: tensor<4x4xf32>) {
  // expected-error@+1 {{'nibble.dequantize' op the scheme is two-level}}
  %d = nibble.dequantize %q scales(%s : tensor<4x4xf32>) : !q -> tensor<4x64xf32>
  return
}

// -----

!q = !nibble.qtensor<4x64, #nibble.scheme<#nibble.float<e2m1fn>, group<1, 16>, scale_scheme = #nibble.scheme<#nibble.float<e4m3fn>, per_tensor>>>
!s = !nibble.qtensor<4x4, #nibble.scheme<#nibble.float<e4m3fn>, per_tensor>>
func.func @two_level_needs_scale_scales(%q: !q, %s: !s) {
  // expected-error@+1 {{'nibble.dequantize' op the scheme is two-level, so scale_scales (the scales of the scales) are required}}
  %d = nibble.dequantize %q scales(%s : !s) : !q -> tensor<4x64xf32>
  return
}

// -----

!q = !nibble.qtensor<16x64, #nibble.scheme<#nibble.int<4, signed>, per_channel<0>>>
func.func @matmul_k(%x: tensor<1x32xf32>, %w: !q, %s: tensor<16x1xf32>) {
  // expected-error@+1 {{'nibble.matmul' op weight is 16 x 64 but the input has K = 32 (the weight is N x K, as in PyTorch Linear)}}
  %y = nibble.matmul %x, %w scales(%s : tensor<16x1xf32>) : tensor<1x32xf32>, !q -> tensor<1x16xf32>
  return
}

// -----

!q = !nibble.qtensor<16x64, #nibble.scheme<#nibble.int<4, signed>, per_channel<0>>>
func.func @matmul_result(%x: tensor<2x64xf32>, %w: !q, %s: tensor<16x1xf32>) {
  // expected-error@+1 {{'nibble.matmul' op result must be 2 x 16, got 'tensor<2x8xf32>'}}
  %y = nibble.matmul %x, %w scales(%s : tensor<16x1xf32>) : tensor<2x64xf32>, !q -> tensor<2x8xf32>
  return
}

// -----

!q = !nibble.qtensor<16x64, #nibble.scheme<#nibble.int<4, signed>, per_channel<0>>>
func.func @matmul_act_format(%x: tensor<2x64xf32>, %w: !q, %s: tensor<16x1xf32>) {
  // expected-error@+1 {{'nibble.matmul' op act_format must be a number format attribute, got 8 : i32}}
  %y = nibble.matmul %x, %w scales(%s : tensor<16x1xf32>) {act_format = 8 : i32} : tensor<2x64xf32>, !q -> tensor<2x16xf32>
  return
}

// -----

!q = !nibble.qtensor<16x64, #nibble.scheme<#nibble.int<4, signed>, per_channel<0>>>
func.func @matmul_act_scale_alone(%x: tensor<2x64xf32>, %w: !q, %s: tensor<16x1xf32>) {
  // expected-error@+1 {{'nibble.matmul' op act_scale needs act_format}}
  %y = nibble.matmul %x, %w scales(%s : tensor<16x1xf32>) {act_scale = 0.5 : f32} : tensor<2x64xf32>, !q -> tensor<2x16xf32>
  return
}

// -----

!q = !nibble.qtensor<16x64, #nibble.scheme<#nibble.int<4, signed>, per_channel<0>>>
func.func @matmul_act_scale_negative(%x: tensor<2x64xf32>, %w: !q, %s: tensor<16x1xf32>) {
  // expected-error@+1 {{'nibble.matmul' op act_scale must be finite and positive, got -1}}
  %y = nibble.matmul %x, %w scales(%s : tensor<16x1xf32>) {act_format = #nibble.int<8, signed>, act_scale = -1.0 : f32} : tensor<2x64xf32>, !q -> tensor<2x16xf32>
  return
}

// -----

func.func @constant_size() {
  // expected-error@+1 {{'nibble.constant' op payload has 3 bytes but 8 codes of 4 bits pack into 4 bytes}}
  %c = nibble.constant dense<[1, 2, 3]> : tensor<3xi8> -> !nibble.qtensor<2x4, #nibble.scheme<#nibble.int<4, signed>, per_tensor>>
  return
}

// -----

func.func @constant_payload() {
  // expected-error@+1 {{'nibble.constant' op payload must be an i8 elements attribute}}
  %c = nibble.constant dense<[1.0, 2.0]> : tensor<2xf32> -> !nibble.qtensor<1x4, #nibble.scheme<#nibble.int<4, signed>, per_tensor>>
  return
}

// -----

func.func @observe_name(%x: tensor<4xf32>) {
  // expected-error@+1 {{'nibble.observe' op needs a non-empty name (the statistics key)}}
  nibble.observe "" %x : tensor<4xf32>
  return
}
