//===- LoadErrorTest.cpp - Loading by path, malformed files ---------------===//

#include "TestUtil.h"

#include <algorithm>
#include <filesystem>
#include <random>

using namespace nibble::tokenizer;
using namespace nibble::tokenizer::test;

namespace {

/// The error parsing `json` gives ("" if it parses).
std::string jsonError(const std::string &json) {
  std::string error;
  auto tok = parseHFTokenizerJson(json, "test.json", error);
  return tok ? std::string() : error;
}

/// A minimal valid tokenizer.json with `members` added at the top level and
/// `modelMembers` inside the model.
std::string tokenizerJson(const std::string &members,
                          const std::string &modelMembers =
                              R"("vocab": {"a": 0, "b": 1, "ab": 2},)"
                              R"( "merges": ["a b"])") {
  return R"({"model": {"type": "BPE", )" + modelMembers + "}" +
         (members.empty() ? "" : ", " + members) + "}";
}

std::string llama2cError(const std::string &bytes, int32_t vocabSize = -1) {
  std::string error;
  auto tok =
      parseLlama2cTokenizer(reinterpret_cast<const uint8_t *>(bytes.data()),
                            bytes.size(), vocabSize, "test.bin", error);
  return tok ? std::string() : error;
}

std::string writeTemp(const std::string &name, const std::string &bytes) {
  std::string path = ::testing::TempDir() + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

} // namespace

//===----------------------------------------------------------------------===//
// llama2.c
//===----------------------------------------------------------------------===//

TEST(Llama2cErrors, TruncatedAtEveryKindOfCutPoint) {
  // Header 0..3; token 0 at 4 ("<unk>", 5 bytes); token 1 at 17; token 2 at
  // 30 ("abc"); 41 bytes in all.
  std::string file =
      llama2cFile(8, {{0, "<unk>"}, {0, "\n<s>\n"}, {-1, "abc"}});
  ASSERT_EQ(file.size(), 41u);
  ASSERT_EQ(llama2cError(file), "");
  auto cut = [&](size_t size, int32_t vocabSize = -1) {
    return llama2cError(file.substr(0, size), vocabSize);
  };
  EXPECT_EQ(cut(2), "test.bin: truncated header: max_token_length needs 4 "
                    "bytes at byte offset 0, the file has 2");
  EXPECT_EQ(cut(4), "test.bin: no tokens after the 4-byte header");
  EXPECT_EQ(cut(6), "test.bin: token 0 at byte offset 4: truncated: score "
                    "and length need 8 bytes, 2 left in the file (size 6)");
  EXPECT_EQ(cut(10), "test.bin: token 0 at byte offset 4: truncated: score "
                     "and length need 8 bytes, 6 left in the file (size 10)");
  EXPECT_EQ(cut(14), "test.bin: token 0 at byte offset 4: truncated: the "
                     "5-byte string runs past the end of the file (size 14)");
  EXPECT_EQ(cut(39), "test.bin: token 2 at byte offset 30: truncated: the "
                     "3-byte string runs past the end of the file (size 39)");
  // An entry boundary is a valid end when the vocabulary size is not given,
  // and an error when it is.
  EXPECT_EQ(cut(17), "");
  EXPECT_EQ(cut(17, 3), "test.bin: token 1 at byte offset 17: truncated: "
                        "score and length need 8 bytes, 0 left in the file "
                        "(size 17)");
  EXPECT_EQ(cut(41, 3), "");
}

TEST(Llama2cErrors, TruncatedRealFile) {
  NIBBLE_SHARED_PATH(path, "models/stories260K/tok512.bin");
  std::string file = readBytes(path);
  // Entry boundaries, walked independently.
  std::vector<size_t> boundaries;
  for (size_t at = 4; at < file.size();) {
    boundaries.push_back(at);
    int32_t length;
    std::memcpy(&length, file.data() + at + 4, 4);
    at += 8 + size_t(length);
  }
  ASSERT_EQ(boundaries.size(), 512u);
  for (size_t size :
       {size_t(0), size_t(3), size_t(7), size_t(12), size_t(20), size_t(300),
        size_t(3001), boundaries[100], boundaries[100] + 5, file.size() - 1}) {
    std::string error;
    auto data = reinterpret_cast<const uint8_t *>(file.data());
    EXPECT_FALSE(parseLlama2cTokenizer(data, size, 512, path, error));
    EXPECT_NE(error.find(path + ": "), std::string::npos) << error;
    EXPECT_NE(error.find("byte offset"), std::string::npos) << error;
    bool boundary = std::find(boundaries.begin(), boundaries.end(), size) !=
                    boundaries.end();
    auto prefix = parseLlama2cTokenizer(data, size, -1, path, error);
    EXPECT_EQ(bool(prefix), boundary) << size << ": " << error;
  }
}

TEST(Llama2cErrors, BadLengths) {
  std::string negative;
  appendI32(negative, 8);
  appendF32(negative, 0);
  appendI32(negative, -5);
  EXPECT_EQ(llama2cError(negative),
            "test.bin: token 0 at byte offset 4: length -5 is negative");
  EXPECT_EQ(llama2cError(llama2cFile(3, {{0, "abc"}, {0, "abcd"}})),
            "test.bin: token 1 at byte offset 15: length 4 exceeds "
            "max_token_length 3");
  EXPECT_EQ(llama2cError(llama2cFile(-1, {{0, "a"}})),
            "test.bin: max_token_length -1 at byte offset 0 is negative");
}

//===----------------------------------------------------------------------===//
// tokenizer.json
//===----------------------------------------------------------------------===//

TEST(HFErrors, SyntaxErrorGivesBytePosition) {
  std::string error = jsonError(R"({"model": {"type": "BPE",})");
  EXPECT_EQ(error.rfind("test.json: JSON syntax error at byte 26: ", 0), 0u)
      << error;
  error = jsonError("");
  EXPECT_EQ(error.rfind("test.json: JSON syntax error at byte 1: ", 0), 0u)
      << error;
}

TEST(HFErrors, StructureAndTypes) {
  EXPECT_EQ(jsonError("[]"),
            "test.json: (top level): expected an object, got array");
  EXPECT_EQ(jsonError("{}"), "test.json: model: missing");
  EXPECT_EQ(jsonError(R"({"model": {"type": "WordPiece", "vocab": {}}})"),
            "test.json: model.type: unsupported model type 'WordPiece' "
            "(only BPE is supported)");
  EXPECT_EQ(jsonError(tokenizerJson("", R"("vocab": [], "merges": [])")),
            "test.json: model.vocab: expected an object, got array");
  EXPECT_EQ(
      jsonError(tokenizerJson("", R"("vocab": {"a": "1"}, "merges": [])")),
      "test.json: model.vocab[\"a\"]: expected an integer in 0..2147483646, "
      "got string");
  EXPECT_EQ(
      jsonError(tokenizerJson("", R"("vocab": {"a": 1.5}, "merges": [])")),
      "test.json: model.vocab[\"a\"]: expected an integer in 0..2147483646, "
      "got 1.5");
  EXPECT_EQ(jsonError(tokenizerJson(
                "", R"("vocab": {"a": 0, "b": 0}, "merges": [])")),
            "test.json: model.vocab[\"b\"]: id 0 is also the id of 'a'");
  EXPECT_EQ(jsonError(tokenizerJson(
                "", R"("vocab": {}, "merges": [], "fuse_unk": "yes")")),
            "test.json: model.fuse_unk: expected a boolean, got string");
  EXPECT_EQ(jsonError(tokenizerJson(
                "", R"("vocab": {}, "merges": [], "unk_token": "<unk>")")),
            "test.json: model.unk_token: '<unk>' is not in model.vocab");
  EXPECT_EQ(jsonError(tokenizerJson(
                "", R"("vocab": {}, "merges": [], "dropout": 0.1)")),
            "test.json: model.dropout: BPE dropout 0.1 is not supported");
  EXPECT_EQ(jsonError(tokenizerJson(R"("added_tokens": [{"id": -1,)"
                                    R"( "content": "<s>"}])")),
            "test.json: added_tokens[0].id: expected an integer in "
            "0..2147483646, got -1");
  EXPECT_EQ(jsonError(tokenizerJson(R"("added_tokens": [{"id": 3}])")),
            "test.json: added_tokens[0].content: missing");
}

TEST(HFErrors, Merges) {
  // As tokenizers does, a merge must name vocabulary tokens and make one.
  EXPECT_EQ(jsonError(tokenizerJson(
                "", R"("vocab": {"a": 0, "b": 1}, "merges": ["a z"])")),
            "test.json: model.merges[0]: token 'z' is not in model.vocab");
  EXPECT_EQ(jsonError(tokenizerJson(
                "", R"("vocab": {"a": 0, "b": 1}, "merges": [["a", "b"]])")),
            "test.json: model.merges[0]: merged token 'ab' is not in "
            "model.vocab");
  EXPECT_EQ(
      jsonError(tokenizerJson("", R"("vocab": {"a": 0}, "merges": ["a b c"])")),
      "test.json: model.merges[0]: expected \"left right\" (one "
      "space), got 'a b c'");
  EXPECT_EQ(jsonError(tokenizerJson("", R"("vocab": {"a": 0}, "merges": [5])")),
            "test.json: model.merges[0]: expected a string or a pair of "
            "strings, got number");
  EXPECT_EQ(jsonError(tokenizerJson(
                "", R"("vocab": {"a": 0}, "merges": [["a", 1]])")),
            "test.json: model.merges[0][1]: expected a string, got number");
}

TEST(HFErrors, Components) {
  EXPECT_EQ(jsonError(tokenizerJson(
                R"("pre_tokenizer": {"type": "Sequence", "pretokenizers": [)"
                R"({"type": "ByteLevel"}, {"type": "BertPreTokenizer"}]})")),
            "test.json: pre_tokenizer.pretokenizers[1].type: unsupported "
            "pre-tokenizer 'BertPreTokenizer'");
  EXPECT_EQ(jsonError(tokenizerJson(
                R"("normalizer": {"type": "Sequence", "normalizers": [)"
                R"({"type": "NFC"}]})")),
            "test.json: normalizer.normalizers[0].type: unsupported "
            "normalizer 'NFC'");
  EXPECT_EQ(jsonError(tokenizerJson(R"("decoder": {"type": "CTC"})")),
            "test.json: decoder.type: unsupported decoder 'CTC'");
  EXPECT_EQ(jsonError(tokenizerJson(R"("decoder": {"kind": "Fuse"})")),
            "test.json: decoder.type: missing");
  EXPECT_EQ(jsonError(tokenizerJson(R"("post_processor": {"type": "X"})")),
            "test.json: post_processor.type: unsupported post-processor 'X'");
  EXPECT_EQ(jsonError(tokenizerJson(
                R"("pre_tokenizer": {"type": "Split", "pattern": {"Foo": 1},)"
                R"( "behavior": "Isolated"})")),
            "test.json: pre_tokenizer.pattern: expected {\"String\": ...} or "
            "{\"Regex\": ...}");
  EXPECT_EQ(
      jsonError(tokenizerJson(
          R"("pre_tokenizer": {"type": "Split", "pattern": {"Regex": "("},)"
          R"( "behavior": "Isolated"})")),
      "test.json: pre_tokenizer.pattern.Regex: invalid regex '(' at "
      "offset 1: missing closing parenthesis");
  EXPECT_EQ(
      jsonError(tokenizerJson(
          R"("pre_tokenizer": {"type": "Split", "pattern": {"String": "x"},)"
          R"( "behavior": "Sideways"})")),
      "test.json: pre_tokenizer.behavior: unknown split behavior "
      "'Sideways'");
  EXPECT_EQ(
      jsonError(tokenizerJson(
          R"("pre_tokenizer": {"type": "Metaspace", "replacement": "ab"})")),
      "test.json: pre_tokenizer.replacement: expected one character, "
      "got 'ab'");
  EXPECT_EQ(jsonError(tokenizerJson(
                R"("pre_tokenizer": {"type": "Metaspace", "replacement": "_",)"
                R"( "add_prefix_space": false, "prepend_scheme": "always"})")),
            "test.json: pre_tokenizer.add_prefix_space: false does not match "
            "prepend_scheme 'always'");
  EXPECT_EQ(jsonError(tokenizerJson(
                R"("decoder": {"type": "Strip", "content": " ", "start": "1",)"
                R"( "stop": 0})")),
            "test.json: decoder.start: expected an integer in 0..4294967295, "
            "got string");
  EXPECT_EQ(
      jsonError(tokenizerJson(
          R"("post_processor": {"type": "TemplateProcessing", "single": [)"
          R"({"SpecialToken": {"id": "<s>", "type_id": 0}}],)"
          R"( "special_tokens": {}})")),
      "test.json: post_processor.single[0].SpecialToken.id: '<s>' is "
      "not in post_processor.special_tokens");
  std::string nested = R"({"type": "Fuse"})";
  for (int i = 0; i < 40; ++i)
    nested = R"({"type": "Sequence", "decoders": [)" + nested + "]}";
  std::string error = jsonError(tokenizerJson(R"("decoder": )" + nested));
  EXPECT_NE(error.find("Sequence nested deeper than 32 levels"),
            std::string::npos)
      << error;
}

// Any prefix or byte-level mutation of a valid file must give a tokenizer or
// an error: never a crash or an exception out of the library.
TEST(HFErrors, DamagedFilesNeverCrash) {
  std::string valid = tokenizerJson(
      R"("added_tokens": [{"id": 2, "content": "<s>", "special": true}],)"
      R"( "normalizer": {"type": "Sequence", "normalizers": [)"
      R"({"type": "Prepend", "prepend": "_"}, {"type": "Lowercase"}]},)"
      R"( "pre_tokenizer": {"type": "Sequence", "pretokenizers": [)"
      R"({"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Removed"},)"
      R"( {"type": "ByteLevel", "use_regex": false}]},)"
      R"( "decoder": {"type": "Sequence", "decoders": [{"type": "ByteLevel"},)"
      R"( {"type": "Strip", "content": "_", "start": 1, "stop": 0}]})");
  ASSERT_EQ(jsonError(valid), "");
  for (size_t size = 0; size < valid.size(); ++size)
    EXPECT_NE(jsonError(valid.substr(0, size)), "") << size;
  std::mt19937 rng(5);
  const std::string junk = "{}[]\":,0-9aeBPE \\";
  for (int i = 0; i < 3000; ++i) {
    std::string damaged = valid;
    for (int k = 0; k < 3; ++k)
      damaged[rng() % damaged.size()] = junk[rng() % junk.size()];
    std::string error;
    auto tok = parseHFTokenizerJson(damaged, "test.json", error);
    if (tok) // what loads must also encode and decode
      tok->decode(tok->encode("Hello world", true));
    else
      EXPECT_EQ(error.rfind("test.json: ", 0), 0u) << error;
  }
}

//===----------------------------------------------------------------------===//
// loadTokenizer
//===----------------------------------------------------------------------===//

TEST(LoadTokenizer, MissingAndUnreadableFiles) {
  std::string error;
  for (const char *path : {"/nonexistent/tok512.bin", "/nonexistent/t.json",
                           "/nonexistent/t.model"}) {
    EXPECT_FALSE(loadTokenizer(path, error));
    EXPECT_EQ(error, std::string("cannot open ") + path +
                         ": No such file or directory");
  }
  std::string emptyDir = ::testing::TempDir() + "nibble-tok-empty-dir";
  std::filesystem::create_directories(emptyDir);
  EXPECT_FALSE(loadTokenizer(emptyDir, error));
  EXPECT_EQ(error, emptyDir + ": directory has neither tokenizer.json nor "
                              "tokenizer.model");
  std::string badModel = writeTemp("nibble-tok-bad.model", "not a proto");
  EXPECT_FALSE(loadTokenizer(badModel, error));
  EXPECT_EQ(error.rfind(badModel + ": not a valid SentencePiece model", 0), 0u)
      << error;
  std::string badJson = writeTemp("nibble-tok-bad.json", "{");
  EXPECT_FALSE(loadTokenizer(badJson, error));
  EXPECT_EQ(error.rfind(badJson + ": JSON syntax error at byte 2", 0), 0u)
      << error;
}

TEST(LoadTokenizer, DispatchesOnPath) {
  NIBBLE_SHARED_PATH(bin, "models/stories260K/tok512.bin");
  NIBBLE_SHARED_PATH(model, "models/stories260K/tok512.model");
  std::string error;
  auto l2c = loadTokenizer(bin, error);
  ASSERT_TRUE(l2c) << error;
  EXPECT_EQ(l2c->kind(), "llama2c");
  // A directory holding only tokenizer.model.
  std::string dir = ::testing::TempDir() + "nibble-tok-sp-dir";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(model, dir + "/tokenizer.model",
                             std::filesystem::copy_options::overwrite_existing);
  auto sp = loadTokenizer(dir, error);
  ASSERT_TRUE(sp) << error;
  EXPECT_EQ(sp->kind(), "sentencepiece");
  EXPECT_EQ(sp->preTokenize("a b"), (std::vector<std::string>{"a b"}));
}
