// Checking the numpy arrays a kernel is given (pybind11, no torch): every kernel takes
// arrays of one exact dtype and shape, and a mismatch is a caller's bug, raised as a
// ValueError instead of read as the wrong type or out of bounds.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>

namespace vortex {

namespace py = pybind11;

// A C-contiguous array of T: what a read-only argument becomes (a copy only when the
// caller's array was not contiguous).
template <typename T>
using Input = py::array_t<T, py::array::c_style | py::array::forcecast>;

constexpr py::ssize_t kAny = -1;  // a shape entry that any size matches

template <typename T>
const char* dtype_name() {
  if (std::is_same<T, bool>::value) return "bool";
  if (std::is_same<T, int8_t>::value) return "int8";
  if (std::is_same<T, int16_t>::value) return "int16";
  if (std::is_same<T, int32_t>::value) return "int32";
  if (std::is_same<T, int64_t>::value) return "int64";
  if (std::is_same<T, float>::value) return "float32";
  return "?";
}

// Raises ValueError unless `array` has dtype T and `shape` (kAny entries match any size).
template <typename T>
void check_array(const py::array& array, const char* what,
                 std::initializer_list<py::ssize_t> shape) {
  bool ok = py::isinstance<py::array_t<T>>(array) &&
            array.ndim() == static_cast<py::ssize_t>(shape.size());
  py::ssize_t axis = 0;
  for (const py::ssize_t size : shape) {
    if (!ok) break;
    ok = size == kAny || array.shape(axis) == size;
    ++axis;
  }
  if (ok) return;
  std::string expected = "(";
  axis = 0;
  for (const py::ssize_t size : shape) {
    if (axis++) expected += ", ";
    expected += size == kAny ? std::string("n") : std::to_string(size);
  }
  if (shape.size() == 1) expected += ",";
  std::string got = "(";
  for (py::ssize_t i = 0; i < array.ndim(); ++i) {
    if (i) got += ", ";
    got += std::to_string(array.shape(i));
  }
  if (array.ndim() == 1) got += ",";
  throw py::value_error(std::string(what) + " must be a " + dtype_name<T>() +
                        " array of shape " + expected + "), not " +
                        std::string(py::str(array.dtype())) + " " + got + ")");
}

// A read-only argument: checked, then C-contiguous.
template <typename T>
Input<T> input(const py::array& array, const char* what,
               std::initializer_list<py::ssize_t> shape) {
  check_array<T>(array, what, shape);
  return Input<T>::ensure(array);
}

// An argument the kernel writes into: checked, and it must be C-contiguous and writeable,
// since a copy would lose what the kernel writes.
template <typename T>
T* in_place(py::array& array, const char* what, std::initializer_list<py::ssize_t> shape) {
  check_array<T>(array, what, shape);
  if (!(array.flags() & py::array::c_style))
    throw py::value_error(std::string(what) + " must be C-contiguous (it is written in place)");
  if (!array.writeable())
    throw py::value_error(std::string(what) + " must be writeable (it is written in place)");
  return static_cast<T*>(array.mutable_data());
}

}  // namespace vortex
