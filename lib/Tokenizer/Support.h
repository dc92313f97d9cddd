//===- Support.h - Internals shared by the tokenizer loaders ---*- C++ -*-===//
//
// File reading, UTF-8 helpers, the GPT-2 byte-level alphabet and the
// O(n log n) pair-merge loop that both BPE flavours (llama2.c scores and
// Hugging Face merge ranks) use. Not installed; lib/Tokenizer only.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_LIB_TOKENIZER_SUPPORT_H
#define NIBBLE_LIB_TOKENIZER_SUPPORT_H

#include <cstddef>
#include <cstdint>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <vector>

namespace nibble::tokenizer::detail {


//===----------------------------------------------------------------------===//
// UTF-8
//===----------------------------------------------------------------------===//

/// Length of the well-formed UTF-8 sequence that starts `s` (non-empty), or
/// 0 when it is ill-formed; then `*invalidLength` (if given) receives the
/// length of its maximal ill-formed subpart, the unit that one U+FFFD
/// replaces (as Rust's `String::from_utf8_lossy` does).
size_t utf8SequenceLength(std::string_view s, size_t *invalidLength = nullptr);

/// Length of the character starting `s` (non-empty): a well-formed sequence,
/// or a single byte where the text is not valid UTF-8.
inline size_t utf8CharLength(std::string_view s) {
  size_t n = utf8SequenceLength(s);
  return n ? n : 1;
}

bool isValidUtf8(std::string_view s);
/// `s` with each maximal ill-formed subpart replaced by U+FFFD.
std::string utf8Lossy(std::string_view s);
/// The code point of the well-formed `length`-byte sequence starting `s`.
uint32_t decodeUtf8(std::string_view s, size_t length);
void appendUtf8(std::string &out, uint32_t codePoint);
/// The code point of `s` if it is exactly one well-formed character.
std::optional<uint32_t> singleCodePoint(std::string_view s);

/// The byte of a byte-fallback token `<0xXX>` (two hex digits), or -1.
int byteTokenValue(std::string_view token);

//===----------------------------------------------------------------------===//
// GPT-2 byte-level alphabet
//===----------------------------------------------------------------------===//

/// The UTF-8 text of the printable character GPT-2's `bytes_to_unicode`
/// assigns to byte `b` ('!'..'~', 0xA1..0xAC and 0xAE..0xFF map to
/// themselves, the other bytes to U+0100 upwards in byte order).
const std::string &byteLevelChar(uint8_t b);
/// The byte whose byte-level character is `codePoint`, or -1.
int byteLevelByte(uint32_t codePoint);

//===----------------------------------------------------------------------===//
// Pair merging
//===----------------------------------------------------------------------===//

/// What merging one adjacent pair of tokens gives: the merged token and its
/// priority (lower merges first).
template <typename Priority> struct PairMerge {
  Priority priority;
  int32_t merged;
};

/// Repeatedly replaces the adjacent pair of `ids` with the lowest priority,
/// the leftmost one on ties, by the token it merges into, until no adjacent
/// pair merges. `lookup(left, right)` returns a
/// `std::optional<PairMerge<Priority>>`; `Priority` needs `operator<`.
///
/// The result is that of the naive loop "scan every pair, merge the best,
/// repeat", in O(n log n): a doubly linked list over the original positions
/// and a heap of candidate pairs ordered by (priority, position of the left
/// token). A merge only creates the two pairs around the merged token, which
/// are pushed; heap entries whose pair no longer exists are skipped when
/// popped. Positions keep their original order, so "smallest left position"
/// is "leftmost" among the current pairs. `ids` must have fewer than 2^32
/// elements.
template <typename Priority, typename Lookup>
void mergeAdjacentPairs(std::vector<int32_t> &ids, const Lookup &lookup) {
  const uint32_t n = uint32_t(ids.size());
  if (n < 2)
    return;
  constexpr uint32_t none = UINT32_MAX;
  // One record per original position, so that checking a popped candidate
  // touches one or two cache lines.
  struct Node {
    int32_t id;
    uint32_t prev, next;
    bool alive;
  };
  std::vector<Node> nodes(n);
  for (uint32_t i = 0; i < n; ++i)
    nodes[i] = {ids[i], i == 0 ? none : i - 1, i + 1 == n ? none : i + 1, true};

  // A merge of the pair (leftId, rightId) starting at position `left`. It
  // is current while that pair is still there: the merge is a function of
  // the two ids, so no more needs checking.
  struct Candidate {
    Priority priority;
    uint32_t left;
    int32_t leftId, rightId, merged;
  };
  auto candidate = [&](uint32_t left) -> std::optional<Candidate> {
    int32_t leftId = nodes[left].id, rightId = nodes[nodes[left].next].id;
    if (std::optional<PairMerge<Priority>> m = lookup(leftId, rightId))
      return Candidate{m->priority, left, leftId, rightId, m->merged};
    return std::nullopt;
  };
  // std::priority_queue pops the greatest: "greater" is lower priority, then
  // the smaller position.
  auto popsLater = [](const Candidate &a, const Candidate &b) {
    if (a.priority < b.priority)
      return false;
    if (b.priority < a.priority)
      return true;
    return a.left > b.left;
  };
  std::vector<Candidate> initial;
  for (uint32_t i = 0; i + 1 < n; ++i)
    if (std::optional<Candidate> c = candidate(i))
      initial.push_back(*c);
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(popsLater)>
      heap(popsLater, std::move(initial)); // O(n) heapify

  while (!heap.empty()) {
    Candidate c = heap.top();
    heap.pop();
    Node &left = nodes[c.left];
    if (!left.alive || left.next == none || left.id != c.leftId ||
        nodes[left.next].id != c.rightId)
      continue; // stale: the pair was merged away or changed
    Node &right = nodes[left.next];
    left.id = c.merged;
    right.alive = false;
    left.next = right.next;
    if (left.next != none)
      nodes[left.next].prev = c.left;
    if (left.prev != none)
      if (std::optional<Candidate> before = candidate(left.prev))
        heap.push(*before);
    if (left.next != none)
      if (std::optional<Candidate> after = candidate(c.left))
        heap.push(*after);
  }

  ids.clear();
  for (const Node &node : nodes)
    if (node.alive)
      ids.push_back(node.id);
}

} // namespace nibble::tokenizer::detail

#endif // NIBBLE_LIB_TOKENIZER_SUPPORT_H
