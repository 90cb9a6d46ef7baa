// Vortex chunks: a block of raw bytes compressed on its own, with no container around it
// (one chunk of an HDF5 dataset, for the HDF5 filter in ../hdf5), coded with the cm kernel
// of ../cm. vortexfmt/chunk.py reads and writes the same bytes in Python. Little-endian:
//
//   offset  size  field
//        0     3  magic     "VXC"
//        3     1  version   u8, 1
//        4     1  codec     u8: 0 stored, 5 cm (a reader rejects any other)
//        5     8  raw_size  u64, the bytes the chunk decodes to
//       13     4  crc32     u32, zlib's CRC-32 of those bytes (crc32.h)
//       17     .  payload   the rest of the chunk: the codec's frame payload as FORMAT.md
//                           defines it (stored: the raw bytes themselves; cm: "CM payload")
//
// The encoder writes cm with one lane, and stored when cm is not smaller. The decoder checks
// every field, and the memory the payload's declarations ask for (vortexfmt/limits.py's rule
// for cm and stored frames) against a limit, before it allocates anything; it accepts any
// lane count FORMAT.md allows, so chunks written by the Python side decode here too.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "chunk/crc32.h"
#include "cm/frame.h"
#include "cm/two_threads.h"

namespace vortex {
namespace chunk {

// A chunk that a reader must reject, or that cannot be written within the limits.
struct ChunkError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr char kMagic[3] = {'V', 'X', 'C'};
constexpr uint8_t kVersion = 1;
constexpr uint8_t kStored = 0;
constexpr uint8_t kCm = 5;
constexpr size_t kHeaderBytes = 17;
constexpr size_t kRawSizeOffset = 5;

// FORMAT.md "CM payload" (spec/cm.py)
constexpr int kCmRevision = 1;
constexpr int kMinTableBits = 10;
constexpr int kMaxTableBits = 22;
constexpr int kMaxStride = 1024;
// vortexfmt/codecs/cm.py's DEFAULT_MAX_TABLE_BITS: the writer's largest tables
constexpr int kDefaultMaxTableBits = 18;

// vortexfmt/limits.py: DEFAULT_MEMORY_LIMIT, and the terms of cm_frame_memory
constexpr uint64_t kDefaultMemoryLimit = uint64_t{1} << 30;
constexpr uint64_t kCmContexts = 18, kCmBucketBytes = 64, kCmMatchModels = 2;
constexpr int kCmMatchBitsCap = 24;
constexpr uint64_t kCmModelBytes = uint64_t{6} << 20;
constexpr uint64_t kCmLaneBytes = 512;

inline int bit_length(uint64_t value) {
  int bits = 0;
  for (; value != 0; value >>= 1) ++bits;
  return bits;
}

// The largest table_bits a cm payload of raw_size bytes may declare (spec/cm.py).
inline int max_table_bits(uint64_t raw_size) {
  return std::max(kMinTableBits,
                  std::min(kMaxTableBits, bit_length(raw_size == 0 ? 0 : raw_size - 1)));
}

// The table_bits a writer uses for raw_size bytes (vortexfmt/codecs/cm.py table_bits_for).
inline int table_bits_for(uint64_t raw_size, int max_bits) {
  return std::max(kMinTableBits, std::min(max_bits, bit_length(raw_size / 8)));
}

// a + b, or UINT64_MAX where that overflows (a need that large is refused anyway)
inline uint64_t add_saturated(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

// limits.cm_frame_memory: what decoding a cm payload needs, for table_bits <= 22 and lanes
// no more than the payload's bytes.
inline uint64_t cm_frame_memory(uint64_t raw_size, uint64_t payload_size, int table_bits,
                                uint64_t lanes) {
  const int match_bits = std::min(table_bits + 4, kCmMatchBitsCap);
  const uint64_t tables = kCmContexts * kCmBucketBytes * (uint64_t{1} << table_bits) +
                          kCmMatchModels * 4 * (uint64_t{1} << match_bits);
  const uint64_t fixed = tables + kCmModelBytes + lanes * kCmLaneBytes;
  return add_saturated(add_saturated(fixed, raw_size), payload_size);
}

// limits.stored_frame_memory
inline uint64_t stored_frame_memory(uint64_t raw_size, uint64_t payload_size) {
  return add_saturated(raw_size, payload_size);
}

// --- Writing ------------------------------------------------------------------------------

struct EncodeOptions {
  int max_table_bits = kDefaultMaxTableBits;  // kMinTableBits..kMaxTableBits
  int stride = 0;                             // the cm payload's record length, 0..1024
  int threads = 1;                            // 1 or 2 (two_threads.h): the same bytes
  // the chunk must decode within this (a reader's default limit): cm uses smaller tables,
  // or the chunk is stored, or encode throws
  uint64_t memory_limit = kDefaultMemoryLimit;
};

inline void put_le(std::string* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

inline void put_leb128(std::string* out, uint64_t value) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>(0x80 | (value & 0x7F)));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

inline std::string chunk_header(uint8_t codec, uint64_t raw_size, uint32_t crc) {
  std::string header(kMagic, sizeof kMagic);
  header.push_back(static_cast<char>(kVersion));
  header.push_back(static_cast<char>(codec));
  put_le(&header, raw_size, 8);
  put_le(&header, crc, 4);
  return header;
}

// The cm payload of `size` raw bytes in one lane (FORMAT.md "CM payload").
inline std::string cm_payload(const uint8_t* raw, size_t size, int table_bits, int stride,
                              int threads) {
  const cm::Params params{table_bits, stride};
  const cm::EncodedFrame frame =
      threads == 2 ? cm::encode_frame_on_two_threads(raw, size, 1, params, false)
                   : cm::encode_frame(raw, size, 1, params, false);
  if (frame.streams.size() != 1) throw ChunkError("cm encoder returned no stream");
  const std::string& stream = frame.streams[0];
  std::string payload;
  payload.push_back(static_cast<char>(kCmRevision));
  payload.push_back(0);  // flags
  payload.push_back(static_cast<char>(table_bits));
  put_le(&payload, static_cast<uint64_t>(stride), 2);
  put_leb128(&payload, 1);  // lanes
  put_leb128(&payload, stream.size());
  payload += stream;
  return payload;
}

// The chunk of `size` raw bytes: cm, or stored where cm is not smaller. Throws
// std::invalid_argument for options out of range and ChunkError for raw bytes too many to
// decode within options.memory_limit even stored.
inline std::string encode(const uint8_t* raw, size_t size, const EncodeOptions& options) {
  if (options.max_table_bits < kMinTableBits || options.max_table_bits > kMaxTableBits)
    throw std::invalid_argument("max_table_bits out of range");
  if (options.stride < 0 || options.stride > kMaxStride)
    throw std::invalid_argument("stride out of range");
  if (options.threads != 1 && options.threads != 2)
    throw std::invalid_argument("threads must be 1 or 2");
  const uint32_t crc = crc32(raw, size);
  // A cm payload is kept only when smaller than the raw bytes, so a need computed with
  // payload_size = size bounds every kept one.
  int table_bits = table_bits_for(size, options.max_table_bits);
  while (table_bits > kMinTableBits &&
         cm_frame_memory(size, size, table_bits, 1) > options.memory_limit)
    --table_bits;
  if (size > 0 && cm_frame_memory(size, size, table_bits, 1) <= options.memory_limit) {
    std::string payload = cm_payload(raw, size, table_bits, options.stride, options.threads);
    if (payload.size() < size) return chunk_header(kCm, size, crc) + payload;
  }
  if (stored_frame_memory(size, size) > options.memory_limit)
    throw ChunkError("chunk of " + std::to_string(size) +
                     " bytes is too large to decode within the memory limit");
  return chunk_header(kStored, size, crc) + std::string(reinterpret_cast<const char*>(raw), size);
}

// --- Reading ------------------------------------------------------------------------------

// Reads little-endian fields and LEB128 values from a byte range, checking each length.
class FieldReader {
 public:
  FieldReader(const uint8_t* data, size_t size, const char* what)
      : data_(data), size_(size), what_(what) {}
  size_t offset() const { return offset_; }
  size_t left() const { return size_ - offset_; }
  uint64_t le(int bytes) {
    need(static_cast<size_t>(bytes));
    uint64_t value = 0;
    for (int i = 0; i < bytes; ++i) value |= uint64_t{data_[offset_ + i]} << (8 * i);
    offset_ += static_cast<size_t>(bytes);
    return value;
  }
  // Unsigned LEB128, padded encodings included, at most 10 bytes and below 2^64 (spec/).
  uint64_t leb128(const char* field) {
    uint64_t value = 0;
    for (int i = 0; i < 10; ++i) {
      need(1);
      const uint8_t byte = data_[offset_++];
      if (i == 9 && (byte & 0x7F) > 1)
        throw ChunkError(std::string(what_) + " " + field + ": LEB128 value is not below 2^64");
      value |= uint64_t{byte & 0x7Fu} << (7 * i);
      if (byte < 0x80) return value;
    }
    throw ChunkError(std::string(what_) + " " + field + ": LEB128 value longer than 10 bytes");
  }

 private:
  void need(size_t bytes) {
    if (bytes > left()) throw ChunkError(std::string(what_) + " is truncated");
  }
  const uint8_t* data_;
  size_t size_;
  size_t offset_ = 0;
  const char* what_;
};

inline void check_memory(uint64_t need, uint64_t limit, const std::string& what) {
  if (need > limit)
    throw ChunkError(what + " needs " + std::to_string(need) + " bytes of memory to decode, " +
                     "above the limit of " + std::to_string(limit));
}

// The raw bytes of a cm payload (FORMAT.md "CM payload"), after the checks FORMAT.md asks.
inline std::string decode_cm(const uint8_t* payload, size_t size, uint64_t raw_size,
                             uint64_t memory_limit) {
  FieldReader in(payload, size, "cm payload header");
  const uint64_t revision = in.le(1), flags = in.le(1);
  const int table_bits = static_cast<int>(in.le(1));
  const uint64_t stride = in.le(2);
  const uint64_t lanes = in.leb128("lanes");
  if (revision != kCmRevision)
    throw ChunkError("cm payload of revision " + std::to_string(revision) +
                     "; this reader knows revision 1");
  if (flags != 0) throw ChunkError("cm payload has unknown flags " + std::to_string(flags));
  if (table_bits < kMinTableBits || table_bits > max_table_bits(raw_size))
    throw ChunkError("cm payload table_bits " + std::to_string(table_bits) +
                     " is outside 10.." + std::to_string(max_table_bits(raw_size)));
  if (stride > static_cast<uint64_t>(kMaxStride))
    throw ChunkError("cm payload stride " + std::to_string(stride) + " exceeds 1024");
  if (lanes < 1 || lanes > std::max<uint64_t>(1, raw_size))
    throw ChunkError("cm payload has " + std::to_string(lanes) + " lanes for " +
                     std::to_string(raw_size) + " bytes");
  if (lanes > in.left())  // every length takes at least one byte
    throw ChunkError("cm payload header is truncated");
  check_memory(cm_frame_memory(raw_size, size, table_bits, lanes), memory_limit, "cm chunk");
  std::vector<std::pair<const uint8_t*, size_t>> streams;
  streams.reserve(static_cast<size_t>(lanes));
  uint64_t total = 0;
  std::vector<uint64_t> lengths(static_cast<size_t>(lanes));
  for (auto& length : lengths) {
    length = in.leb128("stream lengths");
    total = add_saturated(total, length);
  }
  if (total != in.left())
    throw ChunkError("cm stream lengths do not add up to the payload's " +
                     std::to_string(in.left()) + " bytes after them");
  const uint8_t* stream = payload + in.offset();
  for (const uint64_t length : lengths) {
    streams.emplace_back(stream, static_cast<size_t>(length));
    stream += length;
  }
  return cm::decode_frame(streams, static_cast<size_t>(raw_size),
                          cm::Params{table_bits, static_cast<int>(stride)});
}

// The raw bytes of a chunk. Throws ChunkError for anything the format tells a reader to
// reject, for a chunk whose decoding needs more than memory_limit bytes, and for raw bytes
// whose CRC-32 differs from the recorded one; never returns other bytes than were written.
inline std::string decode(const uint8_t* chunk, size_t size,
                          uint64_t memory_limit = kDefaultMemoryLimit) {
  FieldReader in(chunk, size, "chunk header");
  if (size < sizeof kMagic || !std::equal(kMagic, kMagic + sizeof kMagic,
                                          reinterpret_cast<const char*>(chunk)))
    throw ChunkError("not a Vortex chunk (no VXC magic)");
  in.le(sizeof kMagic);
  const uint64_t version = in.le(1), codec = in.le(1), raw_size = in.le(8);
  const uint32_t crc = static_cast<uint32_t>(in.le(4));
  if (version != kVersion)
    throw ChunkError("chunk of version " + std::to_string(version) + "; this reader knows 1");
  const uint8_t* payload = chunk + kHeaderBytes;
  const size_t payload_size = size - kHeaderBytes;
  std::string raw;
  if (codec == kStored) {
    if (payload_size != raw_size)
      throw ChunkError("stored chunk holds " + std::to_string(payload_size) + " bytes, its " +
                       "header says " + std::to_string(raw_size));
    check_memory(stored_frame_memory(raw_size, payload_size), memory_limit, "stored chunk");
    raw.assign(reinterpret_cast<const char*>(payload), payload_size);
  } else if (codec == kCm) {
    raw = decode_cm(payload, payload_size, raw_size, memory_limit);
  } else {
    throw ChunkError("chunk of codec id " + std::to_string(codec) +
                     "; this reader decodes 0 (stored) and 5 (cm)");
  }
  if (raw.size() != raw_size || crc32(reinterpret_cast<const uint8_t*>(raw.data()),
                                      raw.size()) != crc)
    throw ChunkError("chunk CRC-32 mismatch: the chunk is damaged");
  return raw;
}

}  // namespace chunk
}  // namespace vortex
