"""C++ variants: one torch extension (ops `kernels_native::<task>`), built at `fit`, loaded at `predict`.

`build(folder)` compiles it with `torch.utils.cpp_extension.load_inline` into `folder` (the workspace's
build directory; `predict`'s workspace is read-only, so nothing is compiled there); `load(folder)`
loads the built library. The kernels loop over rows with `at::parallel_for`, so torch's thread count
applies, and leave the inner loops to gcc's vectoriser (-O3 -march=native; -ffast-math lets it use
glibc's vector exp/tanh).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

NAME = "kernels_native"
SOURCE = r"""
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>
#include <cmath>

namespace {

constexpr int64_t GRAIN = 8;  // rows per task of at::parallel_for

template <typename Row>
at::Tensor rowwise(const at::Tensor& input, Row row) {
  TORCH_CHECK(input.scalar_type() == at::kFloat, "float32 only");
  at::Tensor x = input.contiguous();
  at::Tensor out = at::empty_like(x);
  const int64_t cols = x.size(-1), rows = cols ? x.numel() / cols : 0;
  const float* in = x.const_data_ptr<float>();
  float* o = out.mutable_data_ptr<float>();
  at::parallel_for(0, rows, GRAIN, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) row(in + r * cols, o + r * cols, cols);
  });
  return out;
}

at::Tensor softmax(const at::Tensor& x) {
  return rowwise(x, [](const float* in, float* out, int64_t n) {
    float m = in[0];
    for (int64_t i = 1; i < n; ++i) m = std::max(m, in[i]);
    float sum = 0.f;
    for (int64_t i = 0; i < n; ++i) sum += (out[i] = std::exp(in[i] - m));
    const float inv = 1.f / sum;
    for (int64_t i = 0; i < n; ++i) out[i] *= inv;
  });
}

at::Tensor gelu(const at::Tensor& x) {
  return rowwise(x, [](const float* in, float* out, int64_t n) {
    const float k = 0.7978845608028654f;
    for (int64_t i = 0; i < n; ++i) {
      const float v = in[i];
      out[i] = 0.5f * v * (1.f + std::tanh(k * (v + 0.044715f * v * v * v)));
    }
  });
}

at::Tensor rmsnorm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  at::Tensor w = weight.contiguous();
  const float* wp = w.const_data_ptr<float>();
  const float e = static_cast<float>(eps);
  return rowwise(x, [wp, e](const float* in, float* out, int64_t n) {
    float ss = 0.f;
    for (int64_t i = 0; i < n; ++i) ss += in[i] * in[i];
    const float scale = 1.f / std::sqrt(ss / n + e);
    for (int64_t i = 0; i < n; ++i) out[i] = in[i] * scale * wp[i];
  });
}

at::Tensor layernorm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps) {
  at::Tensor w = weight.contiguous(), b = bias.contiguous();
  const float* wp = w.const_data_ptr<float>();
  const float* bp = b.const_data_ptr<float>();
  const float e = static_cast<float>(eps);
  return rowwise(x, [wp, bp, e](const float* in, float* out, int64_t n) {
    float sum = 0.f;
    for (int64_t i = 0; i < n; ++i) sum += in[i];
    const float mean = sum / n;
    float var = 0.f;
    for (int64_t i = 0; i < n; ++i) var += (in[i] - mean) * (in[i] - mean);
    const float inv = 1.f / std::sqrt(var / n + e);
    for (int64_t i = 0; i < n; ++i) out[i] = (in[i] - mean) * inv * wp[i] + bp[i];
  });
}

at::Tensor row_max(const at::Tensor& input) {
  TORCH_CHECK(input.scalar_type() == at::kFloat, "float32 only");
  at::Tensor x = input.contiguous();
  const int64_t cols = x.size(-1), rows = cols ? x.numel() / cols : 0;
  std::vector<int64_t> sizes(x.sizes().begin(), x.sizes().end() - 1);
  at::Tensor out = at::empty(sizes, x.options());
  const float* in = x.const_data_ptr<float>();
  float* o = out.mutable_data_ptr<float>();
  at::parallel_for(0, rows, GRAIN, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* row = in + r * cols;
      float m = row[0];
      for (int64_t i = 1; i < cols; ++i) m = std::max(m, row[i]);
      o[r] = m;
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY(kernels_native, m) {
  m.def("softmax(Tensor x) -> Tensor", &softmax);
  m.def("gelu(Tensor x) -> Tensor", &gelu);
  m.def("rmsnorm(Tensor x, Tensor weight, float eps) -> Tensor", &rmsnorm);
  m.def("layernorm(Tensor x, Tensor weight, Tensor bias, float eps) -> Tensor", &layernorm);
  m.def("row_max(Tensor x) -> Tensor", &row_max);
}
"""


def build(folder: Path) -> Path:
    """Compile the extension into `folder` (about 15-50 s on two cores); returns the library."""
    from torch.utils.cpp_extension import load_inline

    folder.mkdir(parents=True, exist_ok=True)
    flags = ["-O3", "-march=native", "-ffast-math"]
    load_inline(NAME, cpp_sources=SOURCE, build_directory=str(folder), extra_cflags=flags,
                is_python_module=False, no_implicit_headers=True)  # fmt: skip
    return folder / f"{NAME}.so"


def load(folder: Path) -> None:
    if not hasattr(torch.ops, NAME) or not hasattr(getattr(torch.ops, NAME), "softmax"):
        torch.ops.load_library(str(folder / f"{NAME}.so"))


class Native(nn.Module):
    """`ModelNew` for task `name` on the C++ op of the same name; init args (eps) are passed on."""

    def __init__(self, name: str, *init_args):
        super().__init__()
        self.op = getattr(torch.ops.kernels_native, name)
        self.init_args = init_args

    def forward(self, *xs):
        return self.op(*xs, *self.init_args)
