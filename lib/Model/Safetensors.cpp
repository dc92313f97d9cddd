//===- Safetensors.cpp - Validated safetensors reader and writer ----------===//

#include "nibble/Model/Safetensors.h"
#include "nibble/Support/File.h"

#include "nibble/Model/MappedFile.h"

#include "Json.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <limits>

namespace nibble::model {

using json = nlohmann::json;

namespace {
/// The reference implementation's limit on the header length.
constexpr uint64_t kMaxHeaderSize = 100'000'000;

std::string at(uint64_t offset) {
  return " (file offset " + std::to_string(offset) + ")";
}

/// Multiplies non-negative values, false on overflow of 2^63.
bool checkedProduct(const std::vector<int64_t> &shape, uint64_t elemSize,
                    uint64_t &out) {
  uint64_t n = elemSize;
  for (int64_t d : shape) {
    if (d != 0 && n > uint64_t(std::numeric_limits<int64_t>::max()) / uint64_t(d))
      return false;
    n *= uint64_t(d);
  }
  out = n;
  return true;
}
} // namespace

std::optional<SafetensorsHeader> parseSafetensors(const uint8_t *data,
                                                  size_t size,
                                                  const std::string &name,
                                                  std::string &error) {
  if (size < 8) {
    error = name + ": file is " + std::to_string(size) +
            " bytes, too short for the 8-byte safetensors header length";
    return std::nullopt;
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | data[i];
  if (n < 2 || n > kMaxHeaderSize) {
    error = name + ": header length " + std::to_string(n) +
            " is outside [2, 100000000]" + at(0);
    return std::nullopt;
  }
  if (n > size - 8) {
    error = name + ": header length " + std::to_string(n) +
            " runs past the end of the file (" + std::to_string(size) +
            " bytes)" + at(0);
    return std::nullopt;
  }
  const char *text = reinterpret_cast<const char *>(data + 8);
  if (text[0] != '{') {
    error = name + ": header must start with '{'" + at(8);
    return std::nullopt;
  }
  json header;
  std::string what;
  std::optional<uint64_t> offset;
  if (!detail::parseJsonText(std::string_view(text, n), header, what,
                             offset)) {
    error = name + ": header is not valid JSON: " + what +
            (offset ? at(8 + *offset) : std::string());
    return std::nullopt;
  }
  if (!header.is_object()) {
    error = name + ": header must be a JSON object" + at(8);
    return std::nullopt;
  }

  SafetensorsHeader result;
  result.headerSize = n;
  const uint64_t bufferSize = size - 8 - n;
  const uint64_t base = 8 + n;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string &key = it.key();
    const json &v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) {
        error = name + ": __metadata__ must be an object of strings";
        return std::nullopt;
      }
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) {
          error = name + ": __metadata__ value '" + m.key() +
                  "' must be a string";
          return std::nullopt;
        }
        result.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    std::string where = name + ": tensor '" + key + "'";
    if (!v.is_object()) {
      error = where + ": entry must be an object with dtype, shape and "
                      "data_offsets";
      return std::nullopt;
    }
    SafetensorsEntry e;
    e.name = key;
    auto dt = v.find("dtype");
    if (dt == v.end() || !dt->is_string()) {
      error = where + ": missing string field 'dtype'";
      return std::nullopt;
    }
    auto dtype = dtypeFromName(dt->get<std::string>());
    if (!dtype) {
      error = where + ": unknown dtype '" + dt->get<std::string>() + "'";
      return std::nullopt;
    }
    e.dtype = *dtype;
    auto sh = v.find("shape");
    if (sh == v.end() || !sh->is_array()) {
      error = where + ": missing array field 'shape'";
      return std::nullopt;
    }
    for (const json &d : *sh) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) {
        error = where + ": shape entries must be non-negative integers";
        return std::nullopt;
      }
      e.shape.push_back(d.get<int64_t>());
    }
    auto off = v.find("data_offsets");
    if (off == v.end() || !off->is_array() || off->size() != 2 ||
        !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned()) {
      error = where + ": data_offsets must be [begin, end] of non-negative "
                      "integers";
      return std::nullopt;
    }
    e.begin = (*off)[0].get<uint64_t>();
    e.end = (*off)[1].get<uint64_t>();
    if (e.begin > e.end) {
      error = where + ": data_offsets [" + std::to_string(e.begin) + ", " +
              std::to_string(e.end) + "] has begin after end";
      return std::nullopt;
    }
    if (e.end > bufferSize) {
      error = where + ": data_offsets [" + std::to_string(e.begin) + ", " +
              std::to_string(e.end) + "] end past the data buffer (" +
              std::to_string(bufferSize) + " bytes)" +
              at(base + std::min(e.begin, bufferSize));
      return std::nullopt;
    }
    uint64_t expected;
    if (!checkedProduct(e.shape, dtypeSize(e.dtype), expected) ||
        expected != e.end - e.begin) {
      error = where + ": shape " + shapeString(e.shape) + " of " +
              std::string(dtypeName(e.dtype)) + " needs " +
              (checkedProduct(e.shape, dtypeSize(e.dtype), expected)
                   ? std::to_string(expected)
                   : std::string("more than 2^63")) +
              " bytes but data_offsets hold " + std::to_string(e.end - e.begin) +
              at(base + e.begin);
      return std::nullopt;
    }
    result.entries.push_back(std::move(e));
  }

  // Tensors must tile the buffer: sorted by offset, each starts where the
  // previous ended, and the last ends at the end of the file.
  std::sort(result.entries.begin(), result.entries.end(),
            [](const SafetensorsEntry &a, const SafetensorsEntry &b) {
              return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
            });
  uint64_t cursor = 0;
  const SafetensorsEntry *prev = nullptr;
  for (const auto &e : result.entries) {
    if (e.begin < cursor) {
      error = name + ": tensor '" + e.name + "' [" + std::to_string(e.begin) +
              ", " + std::to_string(e.end) + ") overlaps tensor '" +
              prev->name + "' [" + std::to_string(prev->begin) + ", " +
              std::to_string(prev->end) + ")" + at(base + e.begin);
      return std::nullopt;
    }
    if (e.begin > cursor) {
      error = name + ": data buffer has a hole of " +
              std::to_string(e.begin - cursor) + " bytes before tensor '" +
              e.name + "'" + at(base + cursor);
      return std::nullopt;
    }
    cursor = e.end;
    prev = &e;
  }
  if (cursor != bufferSize) {
    error = name + ": " + std::to_string(bufferSize - cursor) +
            " bytes after the last tensor are not described by the header" +
            at(base + cursor);
    return std::nullopt;
  }
  return result;
}

std::vector<uint8_t>
serializeSafetensors(const std::vector<SafetensorsWriteEntry> &tensors,
                     const std::map<std::string, std::string> &metadata) {
  // nlohmann::json objects sort keys; offsets are assigned in `tensors` order.
  json header = json::object();
  if (!metadata.empty())
    header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto &t : tensors) {
    uint64_t bytes = dtypeSize(t.dtype);
    for (int64_t d : t.shape)
      bytes *= uint64_t(d);
    header[t.name] = {{"dtype", std::string(dtypeName(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::vector<uint8_t> out(8 + text.size() + offset);
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i)
    out[i] = uint8_t(n >> (8 * i));
  std::memcpy(out.data() + 8, text.data(), text.size());
  uint8_t *p = out.data() + 8 + text.size();
  for (const auto &t : tensors) {
    uint64_t bytes = dtypeSize(t.dtype);
    for (int64_t d : t.shape)
      bytes *= uint64_t(d);
    if (bytes)
      std::memcpy(p, t.data, bytes);
    p += bytes;
  }
  return out;
}

bool writeSafetensors(const std::string &path,
                      const std::vector<SafetensorsWriteEntry> &tensors,
                      std::string &error,
                      const std::map<std::string, std::string> &metadata) {
  std::vector<uint8_t> bytes = serializeSafetensors(tensors, metadata);
  return support::writeFileAtomic(path, bytes.data(), bytes.size(), error);
}

} // namespace nibble::model
