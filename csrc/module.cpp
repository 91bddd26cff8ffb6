// The Python module fastgan._C: importing it loads the op registrations
// (a side effect of linking registration.cpp and the kernels) and reports
// build facts. No tensors pass through pybind11.
#include <pybind11/pybind11.h>

#include <string>

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "fastgan compiled kernels (ops are registered under torch.ops.fastgan)";
  m.attr("version") = FASTGAN_VERSION;
#ifdef FASTGAN_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
  m.attr("cuda_archs") = std::string(FASTGAN_CUDA_ARCHS);
  m.attr("cxx_standard") = static_cast<long>(__cplusplus);
  m.attr("cpu_isa") = FASTGAN_CPU_ISA;
}
