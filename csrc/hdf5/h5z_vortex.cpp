// The Vortex HDF5 filter: a dynamically loaded HDF5 filter plugin (HDF5's H5PL interface)
// whose chunks are Vortex chunks (../chunk/chunk.h) coded with the cm kernel (../cm), so that
// h5py, netCDF-4 and the HDF5 tools read and write Vortex-compressed datasets. setup.py builds
// it as vortexfmt/hdf5/plugins/libh5vortex.so: HDF5's loader opens the files named lib*.so*
// in the directories of HDF5_PLUGIN_PATH (vortexfmt.hdf5 adds that directory for h5py).
//
// No HDF5 header or library is needed to build it: HDF5 plugins are loaded by libhdf5 into
// processes that already hold it, and h5py's wheels bundle libhdf5 without headers. So this
// file declares the few types of HDF5's ABI it uses (HDF5 >= 1.10: hid_t is 64 bits) and
// looks up the functions set_local calls, and HDF5's allocator, in the libhdf5 that
// called it (dladdr of the return address, then dlopen with RTLD_NOLOAD: that library, never
// another copy of HDF5 in the same process).
//
// Filter parameters (cd_values, what h5py's compression_opts gives):
//   [0] max_table_bits: 0 for the default (18), else 10..22: the cm tables' largest size
//   [1] stride: the cm record length, 0..1024; when absent, set_local sets it to the
//       dataset's record: the element size times the chunk's dimensions after the first
//       (one row of the chunk), or the element size where that exceeds 1024
//   [2] chunk_bytes: always set by set_local: the bytes of one chunk (element size times
//       the chunk's elements), or 0 for a datatype whose size in the file may differ from
//       H5Tget_size's (variable-length data, references): unknown
// Decoding needs none of them (a chunk says how it was coded), but checks the raw size a
// chunk declares against chunk_bytes when known: the chunk header has no checksum of its
// own, and a damaged raw size would otherwise have the decoder produce up to a gigabyte of
// garbage (minutes of cm) before the CRC-32 refuses it. The encoder refuses a chunk of
// another size the same way, so that it never writes what it would not read (HDF5 then
// stores that chunk unfiltered where the filter is optional, as h5py sets it, and fails the
// write where it is mandatory).
//
// A failure (a damaged chunk, a need above the memory limit, no memory) returns 0, HDF5's
// filter failure, so that the caller gets HDF5's ordinary error (h5py: OSError). Nothing is
// printed unless VORTEX_HDF5_VERBOSE is set (then one line on stderr per failure); the
// reason is kept per thread for vortex_h5_last_error(). VORTEX_HDF5_MEMORY_LIMIT (bytes)
// replaces the 1 GiB default limit of what decoding one chunk may need.
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "chunk/chunk.h"
#include "kernel_support.h"

#define VORTEX_H5_EXPORT extern "C" __attribute__((visibility("default")))

// --- HDF5's ABI (H5public.h, H5Ipublic.h, H5Zpublic.h, H5PLextern.h), HDF5 1.10 to 2.x ---

using hid_t = int64_t;
using herr_t = int;
using htri_t = int;
using hsize_t = uint64_t;
using H5Z_filter_t = int;

enum H5PL_type_t { H5PL_TYPE_ERROR = -1, H5PL_TYPE_FILTER = 0 };

constexpr unsigned kH5ZFlagReverse = 0x0100;  // H5Z_FLAG_REVERSE: the filter decodes
constexpr int kH5ZClassVersion = 1;           // H5Z_CLASS_T_VERS: an H5Z_class2_t
constexpr int kH5SMaxRank = 32;               // H5S_MAX_RANK
// H5T_class_t
constexpr int kH5TString = 3, kH5TReference = 7, kH5TVlen = 9;

extern "C" {
using H5Z_can_apply_func_t = htri_t (*)(hid_t dcpl_id, hid_t type_id, hid_t space_id);
using H5Z_set_local_func_t = herr_t (*)(hid_t dcpl_id, hid_t type_id, hid_t space_id);
using H5Z_func_t = size_t (*)(unsigned flags, size_t cd_nelmts, const unsigned cd_values[],
                              size_t nbytes, size_t* buf_size, void** buf);

struct H5Z_class2_t {
  int version;
  H5Z_filter_t id;
  unsigned encoder_present;
  unsigned decoder_present;
  const char* name;
  H5Z_can_apply_func_t can_apply;
  H5Z_set_local_func_t set_local;
  H5Z_func_t filter;
};
}

namespace {

// The filter id: in 32768..65535, HDF5's range for filters not registered with The HDF
// Group (this one is not yet); 0x8000 | "VX". vortexfmt/hdf5 FILTER_ID is the same.
constexpr H5Z_filter_t kFilterId = 0xD658;
constexpr size_t kParameters = 3;  // max_table_bits, stride, chunk_bytes

// --- Failures -------------------------------------------------------------------------------

thread_local char last_error[512] = "";

size_t fail(const std::string& reason) {
  std::snprintf(last_error, sizeof last_error, "%s", reason.c_str());
  const char* verbose = std::getenv("VORTEX_HDF5_VERBOSE");
  if (verbose != nullptr && *verbose != '\0' && std::strcmp(verbose, "0") != 0)
    std::fprintf(stderr, "vortex hdf5 filter: %s\n", last_error);
  return 0;
}

// --- The calling libhdf5's functions ---------------------------------------------------------

struct Hdf5Api {
  herr_t (*get_filter_by_id2)(hid_t, H5Z_filter_t, unsigned*, size_t*, unsigned*, size_t,
                              char*, unsigned*) = nullptr;
  herr_t (*modify_filter)(hid_t, H5Z_filter_t, unsigned, size_t, const unsigned*) = nullptr;
  size_t (*get_size)(hid_t) = nullptr;
  int (*get_chunk)(hid_t, int, hsize_t*) = nullptr;
  int (*get_class)(hid_t) = nullptr;
  htri_t (*detect_class)(hid_t, int) = nullptr;
  htri_t (*is_variable_str)(hid_t) = nullptr;
  void* (*allocate_memory)(size_t, bool) = nullptr;
  herr_t (*free_memory)(void*) = nullptr;

  bool has_properties() const {
    return get_filter_by_id2 && modify_filter && get_size && get_chunk && get_class &&
           detect_class && is_variable_str;
  }
  bool has_allocator() const { return allocate_memory && free_memory; }
};

template <typename Function>
void look_up(void* library, const char* name, Function* function) {
  *function = reinterpret_cast<Function>(dlsym(library, name));
}

// HDF5's functions in the library that holds `caller` (an address HDF5 called from); all
// null where that library is not HDF5. Looked up once per library.
Hdf5Api hdf5_api(const void* caller) {
  static std::mutex mutex;
  static std::vector<std::pair<const void*, Hdf5Api>> known;  // by library base address
  Dl_info info{};
  if (caller == nullptr || dladdr(caller, &info) == 0 || info.dli_fname == nullptr) return {};
  std::lock_guard<std::mutex> lock(mutex);
  for (const auto& [base, api] : known)
    if (base == info.dli_fbase) return api;
  Hdf5Api api;
  // RTLD_NOLOAD: the library already loaded (a new reference to it, kept), never another
  if (void* library = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD)) {
    look_up(library, "H5Pget_filter_by_id2", &api.get_filter_by_id2);
    look_up(library, "H5Pmodify_filter", &api.modify_filter);
    look_up(library, "H5Tget_size", &api.get_size);
    look_up(library, "H5Pget_chunk", &api.get_chunk);
    look_up(library, "H5Tget_class", &api.get_class);
    look_up(library, "H5Tdetect_class", &api.detect_class);
    look_up(library, "H5Tis_variable_str", &api.is_variable_str);
    look_up(library, "H5allocate_memory", &api.allocate_memory);
    look_up(library, "H5free_memory", &api.free_memory);
  }
  known.emplace_back(info.dli_fbase, api);
  return api;
}

// --- Parameters ------------------------------------------------------------------------------

bool valid_max_table_bits(unsigned value) {
  return value == 0 || (value >= static_cast<unsigned>(vortex::chunk::kMinTableBits) &&
                        value <= static_cast<unsigned>(vortex::chunk::kMaxTableBits));
}

// The dataset's record: the element size times the chunk's dimensions after the first, or
// the element size where that exceeds 1024 (0 where the element does).
unsigned record_stride(const Hdf5Api& api, hid_t dcpl_id, hid_t type_id) {
  const size_t element = api.get_size(type_id);
  const size_t most = vortex::chunk::kMaxStride;
  if (element == 0 || element > most) return 0;
  hsize_t dims[kH5SMaxRank];
  const int rank = api.get_chunk(dcpl_id, kH5SMaxRank, dims);
  size_t row = element;
  for (int i = 1; i < rank && row <= most; ++i)
    row = dims[i] > most ? most + 1 : row * static_cast<size_t>(dims[i]);
  return static_cast<unsigned>(row >= 1 && row <= most ? row : element);
}

// The bytes of one chunk, 0 where they are not known: a datatype whose elements may take
// other sizes in the file than H5Tget_size says (variable-length data and strings,
// references), or a size that does not fit in a cd_value.
unsigned chunk_bytes(const Hdf5Api& api, hid_t dcpl_id, hid_t type_id) {
  if (api.detect_class(type_id, kH5TVlen) != 0 || api.detect_class(type_id, kH5TReference) != 0)
    return 0;
  if (api.detect_class(type_id, kH5TString) != 0 &&  // a string, fixed-size, or nothing known
      (api.get_class(type_id) != kH5TString || api.is_variable_str(type_id) != 0))
    return 0;
  hsize_t dims[kH5SMaxRank];
  const int rank = api.get_chunk(dcpl_id, kH5SMaxRank, dims);
  if (rank < 1) return 0;
  uint64_t bytes = api.get_size(type_id);
  for (int i = 0; i < rank && bytes != 0; ++i)
    bytes = dims[i] > UINT32_MAX || bytes * dims[i] > UINT32_MAX ? 0 : bytes * dims[i];
  return static_cast<unsigned>(bytes);
}

// Fills in the stride from the dataset where the parameters leave it out, and the chunk's
// bytes, after checking them; a negative return fails the dataset's creation.
herr_t set_local(hid_t dcpl_id, hid_t type_id, hid_t /*space_id*/) {
  const Hdf5Api api = hdf5_api(__builtin_return_address(0));
  if (!api.has_properties()) {
    fail("set_local: HDF5's functions were not found; the stride stays as given");
    return 0;
  }
  unsigned flags = 0, values[kParameters + 1] = {0, 0, 0, 0};
  size_t count = kParameters + 1;
  if (api.get_filter_by_id2(dcpl_id, kFilterId, &flags, &count, values, 0, nullptr,
                            nullptr) < 0)
    return -1;
  if (count > kParameters) {
    fail("at most 3 parameters (max_table_bits, stride, chunk_bytes), got " +
         std::to_string(count));
    return -1;
  }
  if (count >= 1 && !valid_max_table_bits(values[0])) {
    fail("max_table_bits must be 0 (default) or 10..22, got " + std::to_string(values[0]));
    return -1;
  }
  if (count >= 2 && values[1] > static_cast<unsigned>(vortex::chunk::kMaxStride)) {
    fail("stride must be 0..1024, got " + std::to_string(values[1]));
    return -1;
  }
  if (count == 0) values[0] = 0;
  if (count < 2) values[1] = record_stride(api, dcpl_id, type_id);
  values[2] = chunk_bytes(api, dcpl_id, type_id);
  return api.modify_filter(dcpl_id, kFilterId, flags, kParameters, values) < 0 ? -1 : 0;
}

uint64_t memory_limit() {
  const char* text = std::getenv("VORTEX_HDF5_MEMORY_LIMIT");
  if (text == nullptr || *text == '\0') return vortex::chunk::kDefaultMemoryLimit;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 10);
  return *end == '\0' && value > 0 ? value : vortex::chunk::kDefaultMemoryLimit;
}

// Throws where the dataset's chunks are known to hold another number of bytes than `size`.
void check_chunk_size(uint64_t size, size_t cd_nelmts, const unsigned cd_values[]) {
  if (cd_nelmts >= 3 && cd_values[2] != 0 && size != cd_values[2])
    throw vortex::chunk::ChunkError("chunk of " + std::to_string(size) + " raw bytes; the " +
                                    "dataset's chunks hold " + std::to_string(cd_values[2]));
}

// The raw bytes of the chunk `chunk`, of the size the dataset's chunks hold when known.
std::string decode(const uint8_t* chunk, size_t size, size_t cd_nelmts,
                   const unsigned cd_values[]) {
  if (size >= vortex::chunk::kHeaderBytes && cd_nelmts >= 3 && cd_values[2] != 0) {
    uint64_t raw_size = 0;  // the header's, read before anything is decoded
    for (size_t i = 0; i < 8; ++i)
      raw_size |= uint64_t{chunk[vortex::chunk::kRawSizeOffset + i]} << (8 * i);
    check_chunk_size(raw_size, cd_nelmts, cd_values);
  }
  return vortex::chunk::decode(chunk, size, memory_limit());
}

// The chunk of `raw`, with the parameters of cd_values. Throws for parameters out of range.
std::string encode(const uint8_t* raw, size_t size, size_t cd_nelmts,
                   const unsigned cd_values[]) {
  if (cd_nelmts > kParameters)
    throw std::invalid_argument("at most 3 parameters, got " + std::to_string(cd_nelmts));
  check_chunk_size(size, cd_nelmts, cd_values);
  vortex::chunk::EncodeOptions options;
  if (cd_nelmts >= 1) {
    if (!valid_max_table_bits(cd_values[0]))
      throw std::invalid_argument("max_table_bits out of range");
    if (cd_values[0] != 0) options.max_table_bits = static_cast<int>(cd_values[0]);
  }
  if (cd_nelmts >= 2) {
    if (cd_values[1] > static_cast<unsigned>(vortex::chunk::kMaxStride))
      throw std::invalid_argument("stride out of range");
    options.stride = static_cast<int>(cd_values[1]);
  }
  // the context stage on a thread of its own where there is a core for it (the same bytes)
  options.threads = vortex::thread_count() >= 2 && size >= (size_t{1} << 16) ? 2 : 1;
  return vortex::chunk::encode(raw, size, options);
}

// HDF5's filter function: the chunk of the nbytes at *buf (or its raw bytes, with
// H5Z_FLAG_REVERSE) replaces them; returns its size, or 0 for a failure.
size_t filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[], size_t nbytes,
              size_t* buf_size, void** buf) {
  const Hdf5Api api = hdf5_api(__builtin_return_address(0));
  try {
    const auto* in = static_cast<const uint8_t*>(*buf);
    const std::string out = (flags & kH5ZFlagReverse)
                                ? decode(in, nbytes, cd_nelmts, cd_values)
                                : encode(in, nbytes, cd_nelmts, cd_values);
    if (out.empty()) return fail("a chunk of no bytes");  // 0 would read as a failure
    void* result = api.has_allocator() ? api.allocate_memory(out.size(), false)
                                       : std::malloc(out.size());
    if (result == nullptr) return fail("no memory for " + std::to_string(out.size()) + " bytes");
    std::memcpy(result, out.data(), out.size());
    if (api.has_allocator())
      api.free_memory(*buf);
    else
      std::free(*buf);
    *buf = result;
    *buf_size = out.size();
    return out.size();
  } catch (const std::exception& error) {
    return fail(error.what());
  } catch (...) {
    return fail("unknown failure");
  }
}

const H5Z_class2_t kVortexFilter = {
    kH5ZClassVersion,
    kFilterId,
    1,  // encoder present
    1,  // decoder present
    "vortex: Vortex chunks (cm), vortexfmt.hdf5",
    nullptr,  // can_apply: any datatype, its bytes are coded as they are
    &set_local,
    &filter,
};

}  // namespace

VORTEX_H5_EXPORT H5PL_type_t H5PLget_plugin_type(void) { return H5PL_TYPE_FILTER; }

VORTEX_H5_EXPORT const void* H5PLget_plugin_info(void) { return &kVortexFilter; }

// Why the last failure on this thread failed ("" when none has).
VORTEX_H5_EXPORT const char* vortex_h5_last_error(void) { return last_error; }
