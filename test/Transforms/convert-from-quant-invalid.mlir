// RUN: quant-opt %s --nibble-convert-from-quant --verify-diagnostics

func.func @narrow(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error@+1 {{narrow storage ranges are not expressible}}
  %q = quant.qcast %x : tensor<4xf32> to tensor<4x!quant.uniform<i8<-127:127>:f32, 0.5>>
  %d = quant.dcast %q : tensor<4x!quant.uniform<i8<-127:127>:f32, 0.5>> to tensor<4xf32>
  return %d : tensor<4xf32>
}

