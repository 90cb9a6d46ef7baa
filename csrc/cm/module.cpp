// The context-mixing frame codec (codec id 5, "cm"; FORMAT.md "CM payload"): the Python
// module vortexfmt._cm_kernel, and the only translation unit of the codec, whose parts are
// one header each in this directory.
//
// A frame is coded bit by bit, most significant bit first. For each bit, eighteen hashed
// contexts of the lane's bytes (ContextModel::begin_byte lists them) each give an adaptive
// probability and a run prediction, an order-0 model and two match models give theirs; five
// mixers whose weights are learnt online combine these in the logistic domain, a final mixer
// combines the five, and three adaptive probability maps refine the result. The bit is then
// arithmetic-coded with torchac's coder (a binary CDF per bit), which coder.h reproduces
// bit for bit because torchac decodes only whole arrays: here each bit's probability
// depends on the bits before it. tests/test_cm_codec.py holds these streams equal to
// torchac's, and tests/golden/cm.json pins what the model computes.
//
// Everything on the coding path is integer arithmetic on fixed-width types, with no
// signed overflow, and no floating point but one division whose truncation is exact in
// any precision (counter_rate), so the encoder and the decoder compute the same
// probabilities on every machine and compiler: this is what makes an archive decodable.
//
// The parts, in the order they build on each other:
//   logistic.h       stretch and squash, the logistic domain of the mixers and maps
//   counters.h       adaptive probabilities: the counter word, its rate, AdaptiveMap
//   contexts.h       hash_context and the context hash tables of cache-line buckets
//   mixer.h          Mixer: weighted sums of logistic inputs, weight sets learnt online
//   apm.h            ProbabilityMap: adaptive probability maps (APM/SSE)
//   coder.h          Encoder and Decoder: torchac's arithmetic coder, one bit at a time
//   match_model.h    the match models' parameters and per-lane state
//   context_model.h  ContextModel, the context stage: contexts, runs, order 0, matches
//                    into each bit's BitInputs
//   model.h          MixingModel, the mixing stage, and Model, both stages in turn
//   frame.h          lanes, encode_frame and decode_frame (primed frames too), Interrupt,
//                    PrimedState (a primed model learnt once, copied for each frame)
//   two_threads.h    encode_frame_on_two_threads: the context stage on its own thread
// Below: the Python bindings (left out with VORTEX_CM_STANDALONE, for a build without
// pybind11).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "frame.h"
#include "two_threads.h"

#ifndef VORTEX_CM_STANDALONE
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

namespace {

// Raised (as the module's Cancelled) when `stop` is set while a frame is being coded.
struct Cancelled : std::runtime_error {
  Cancelled() : std::runtime_error("coding cancelled") {}
};

// What coding polls, with the GIL: the caller's signal handlers (so that Ctrl-C stops a
// frame coded on the main thread), then the `stop` event (threading.Event or None).
struct PollState {
  py::handle stop;
  bool raised = false;  // a handler, or stop.is_set(), raised: the Python error is set
};

bool poll_python(void* context) {
  auto* state = static_cast<PollState*>(context);
  py::gil_scoped_acquire gil;
  if (PyErr_CheckSignals() != 0) {
    state->raised = true;
    return true;
  }
  if (state->stop.is_none()) return false;
  // nothing may be thrown from here through the coding loops (see vortex::cm::Interrupt)
  try {
    const py::object answer = state->stop.attr("is_set")();
    const int truth = PyObject_IsTrue(answer.ptr());
    if (truth >= 0) return truth != 0;
  } catch (py::error_already_set& error) {
    error.restore();
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "asking the stop event failed");
  }
  state->raised = true;  // the Python error is set
  return true;
}

// Runs `code(&interrupt)` without the GIL, stopping as PollState says.
template <typename Code>
auto interruptible(py::object stop, Code&& code) {
  PollState state{stop};
  vortex::cm::Interrupt interrupt{&poll_python, &state};
  auto result = [&] {
    py::gil_scoped_release release;
    return code(&interrupt);
  }();
  if (interrupt.stopped) {
    if (state.raised) throw py::error_already_set();
    throw Cancelled();
  }
  return result;
}

vortex::cm::Params checked_params(int table_bits, int stride) {
  if (table_bits < 1 || table_bits > 30) throw std::invalid_argument("table_bits out of range");
  if (stride < 0 || stride > 1 << 16) throw std::invalid_argument("stride out of range");
  return vortex::cm::Params{table_bits, stride};
}

// A primed frame (non-empty `prime`) has one lane.
void check_priming(std::string_view prime, size_t lanes) {
  if (!prime.empty() && lanes != 1) throw std::invalid_argument("a primed frame has one lane");
}

const uint8_t* as_bytes(std::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// A primed model (frame.h, PrimedState): the model after it learnt a profile's priming
// bytes, once, with the table size and stride of the frames it will code.
struct PrimedModel {
  std::unique_ptr<vortex::cm::PrimedState> state;
};

PrimedModel learn_primed_model(py::bytes prime, int table_bits, int stride, py::object stop) {
  const std::string_view priming = prime;
  if (priming.empty()) throw std::invalid_argument("a primed model needs priming bytes");
  const auto params = checked_params(table_bits, stride);
  PrimedModel model;
  model.state = interruptible(stop, [&](auto* interrupt) {
    return vortex::cm::learn_primed_state(as_bytes(priming), priming.size(), params, interrupt);
  });
  return model;
}

// The state of `primed_model` (None: none).
const vortex::cm::PrimedState* state_of(const py::object& primed_model) {
  if (primed_model.is_none()) return nullptr;
  const auto& model = primed_model.cast<const PrimedModel&>();
  if (!model.state) throw std::invalid_argument("the primed model was never learnt");
  return model.state.get();
}

// (streams, ideal bits) of `data` coded in `lanes` lanes, on one thread or two (the same
// streams either way); with `prime`, after the model has learnt those bytes, or with
// `primed_model`, from a copy of one that has (frame.h; the same streams either way).
py::tuple encode(py::bytes data, size_t lanes, int table_bits, int stride, bool measure,
                 py::object stop, int threads, py::bytes prime, py::object primed_model) {
  const std::string_view raw = data, priming = prime;
  if (lanes < 1) throw std::invalid_argument("lanes must be at least 1");
  if (threads != 1 && threads != 2) throw std::invalid_argument("threads must be 1 or 2");
  check_priming(priming, lanes);
  const auto params = checked_params(table_bits, stride);
  const auto* bytes = as_bytes(raw);
  const vortex::cm::PrimedState* state = state_of(primed_model);
  const vortex::cm::EncodedFrame frame = interruptible(stop, [&](auto* interrupt) {
    if (threads == 2)
      return vortex::cm::encode_frame_on_two_threads(bytes, raw.size(), lanes, params, measure,
                                                     interrupt, as_bytes(priming),
                                                     priming.size(), state);
    if (state != nullptr)
      return vortex::cm::encode_frame(bytes, raw.size(), lanes, params, measure, nullptr,
                                      interrupt, as_bytes(priming), priming.size(), state);
    return vortex::cm::encode_frame(bytes, raw.size(), lanes, params, measure, nullptr,
                                    interrupt, as_bytes(priming), priming.size());
  });
  py::list streams;
  for (const auto& s : frame.streams) streams.append(py::bytes(s));
  return py::make_tuple(streams, frame.ideal_bits);
}

// Each lane's bit probabilities (u16 each, little-endian) as `encode` codes them.
py::list probabilities(py::bytes data, size_t lanes, int table_bits, int stride,
                       py::bytes prime) {
  const std::string_view raw = data, priming = prime;
  if (lanes < 1) throw std::invalid_argument("lanes must be at least 1");
  check_priming(priming, lanes);
  const auto params = checked_params(table_bits, stride);
  std::vector<std::string> result(lanes);
  {
    py::gil_scoped_release release;
    vortex::cm::encode_frame(as_bytes(raw), raw.size(), lanes, params, false, &result,
                             nullptr, as_bytes(priming), priming.size());
  }
  py::list out;
  for (const auto& s : result) out.append(py::bytes(s));
  return out;
}

// The `size` bytes coded by the streams payload[offset : offset + length], one per lane;
// with `prime`, the model first learns those bytes, as encode did (or, with
// `primed_model`, starts from a copy of one that has).
py::bytes decode(py::bytes payload, const std::vector<std::pair<size_t, size_t>>& streams,
                 size_t size, int table_bits, int stride, py::object stop, py::bytes prime,
                 py::object primed_model) {
  const std::string_view bytes = payload, priming = prime;
  if (streams.empty()) throw std::invalid_argument("at least one stream is needed");
  check_priming(priming, streams.size());
  std::vector<std::pair<const uint8_t*, size_t>> views;
  for (const auto& [offset, length] : streams) {
    if (offset > bytes.size() || length > bytes.size() - offset)
      throw std::invalid_argument("stream outside the payload");
    views.emplace_back(reinterpret_cast<const uint8_t*>(bytes.data()) + offset, length);
  }
  const auto params = checked_params(table_bits, stride);
  const vortex::cm::PrimedState* state = state_of(primed_model);
  const std::string out = interruptible(stop, [&](auto* interrupt) {
    return vortex::cm::decode_frame(views, size, params, interrupt, as_bytes(priming),
                                    priming.size(), state);
  });
  return py::bytes(out);
}

}  // namespace

PYBIND11_MODULE(_cm_kernel, m) {
  py::register_exception<Cancelled>(m, "Cancelled");
  py::register_exception<vortex::cm::StreamOverrun>(m, "StreamOverrun");
  py::class_<PrimedModel>(m, "PrimedModel",
                          "a model that has learnt priming bytes, copied for each frame")
      .def_property_readonly("prime_size", [](const PrimedModel& model) {
        return model.state ? model.state->prime.size() : 0;
      });
  m.def("learn_primed_model", &learn_primed_model,
        "a model that has learnt the priming bytes `prime`, for frames of these settings",
        py::arg("prime"), py::arg("table_bits"), py::arg("stride"),
        py::arg("stop") = py::none());
  m.def("encode", &encode, "context-mixing streams of a frame and its ideal code length",
        py::arg("data"), py::arg("lanes"), py::arg("table_bits"), py::arg("stride"),
        py::arg("measure"), py::arg("stop") = py::none(), py::arg("threads") = 1,
        py::arg("prime") = py::bytes(), py::arg("primed_model") = py::none());
  m.def("decode", &decode, "a frame from its context-mixing streams", py::arg("payload"),
        py::arg("streams"), py::arg("size"), py::arg("table_bits"), py::arg("stride"),
        py::arg("stop") = py::none(), py::arg("prime") = py::bytes(),
        py::arg("primed_model") = py::none());
  m.def("probabilities", &probabilities, "each lane's bit probabilities, as encode codes them",
        py::arg("data"), py::arg("lanes"), py::arg("table_bits"), py::arg("stride"),
        py::arg("prime") = py::bytes());
}
#endif  // VORTEX_CM_STANDALONE
