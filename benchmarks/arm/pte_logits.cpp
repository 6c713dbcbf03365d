// Run an ExecuTorch program (.pte) on a batch of preprocessed images, one image per call, and
// write the logits: the aarch64 half of compare_arm.py's ExecuTorch check. It links only the
// C++ runtime the executorch wheel ships (libexecutorch, its kernels and the XNNPACK delegate),
// not torch: the Python bindings need torch, and PyPI's aarch64 torch is a CUDA build.
//
//   pte_logits MODEL.pte INPUTS.f32 N C H W OUT.f32
//
// INPUTS.f32: N*C*H*W little-endian float32 (NCHW, what the program takes); OUT.f32: the N*K
// float32 logits. Prints K. One thread, like the x86 side. Exit 1 with one line on stderr on any error.
#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor.h>
#include <executorch/extension/threadpool/threadpool_guard.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

using executorch::extension::from_blob;
using executorch::extension::Module;

static int fail(const std::string& what) {
  std::fprintf(stderr, "pte_logits: %s\n", what.c_str());
  return 1;
}

// A whole positive decimal number up to 2^30, else 0.
static long dimension(const char* text) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  return (end != text && *end == '\0' && v >= 1 && v <= (1L << 30)) ? v : 0;
}

int main(int argc, char** argv) {
  if (argc != 8) {
    return fail("usage: pte_logits MODEL.pte INPUTS.f32 N C H W OUT.f32");
  }
  const long n = dimension(argv[3]), c = dimension(argv[4]), h = dimension(argv[5]), w = dimension(argv[6]);
  // each factor is at most 2^30, so each product below stays far inside a 64-bit long
  if (n == 0 || c == 0 || h == 0 || w == 0 || c * h > (1L << 30) / w || n > (1L << 30) / (c * h * w)) {
    return fail("N, C, H, W must be positive whole numbers and N*C*H*W at most 2^30");
  }
  // The wheel's headers do not include the thread pool's; its guard runs XNNPACK on this thread.
  executorch::extension::threadpool::NoThreadPoolGuard one_thread;

  const size_t per_image = static_cast<size_t>(c * h * w);
  std::vector<float> inputs(per_image * n);
  std::ifstream in(argv[2], std::ios::binary);
  in.read(reinterpret_cast<char*>(inputs.data()), static_cast<std::streamsize>(inputs.size() * sizeof(float)));
  if (!in || in.peek() != std::char_traits<char>::eof()) {
    return fail(std::string(argv[2]) + ": not exactly N*C*H*W float32 values");
  }

  Module module(argv[1]);
  if (module.load_forward() != executorch::runtime::Error::Ok) {
    return fail(std::string(argv[1]) + ": cannot load method forward (a kernel or the XNNPACK delegate is missing)");
  }
  std::vector<float> logits;
  size_t classes = 0;
  for (long i = 0; i < n; ++i) {
    auto image = from_blob(inputs.data() + i * per_image,
                           {1, static_cast<int>(c), static_cast<int>(h), static_cast<int>(w)});
    auto result = module.forward(image);
    if (!result.ok()) {
      return fail("forward failed on image " + std::to_string(i) + " (error " +
                  std::to_string(static_cast<int>(result.error())) + ")");
    }
    if (result->empty() || !result->at(0).isTensor()) {
      return fail("the program's first output is not a tensor");
    }
    const auto& out = result->at(0).toTensor();
    if (out.scalar_type() != executorch::aten::ScalarType::Float) {
      return fail("the program's output is not float32");
    }
    if (i == 0) {
      classes = static_cast<size_t>(out.numel());
    } else if (static_cast<size_t>(out.numel()) != classes) {
      return fail("the output size changed between images");
    }
    const float* data = out.const_data_ptr<float>();
    logits.insert(logits.end(), data, data + classes);
  }
  std::ofstream out(argv[7], std::ios::binary);
  out.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * sizeof(float)));
  out.close();  // flush now: a full disk must fail here, not silently in the destructor
  if (!out) {
    return fail(std::string(argv[7]) + ": cannot write");
  }
  std::printf("%zu\n", classes);
  return 0;
}
