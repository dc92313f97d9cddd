//===- PtxEmulator.cpp - An interpreter for Nibble's PTX ------------------===//
//
// Parsing turns each statement into an `Inst` (operation, types, operands
// resolved to register slots, immediates, parameter offsets and branch
// targets); running keeps one 64-bit slot per register per thread and
// executes the threads of a warp one after another up to the next
// shfl.sync, which is then resolved for the whole warp.
//
//===----------------------------------------------------------------------===//

#include "nibble/Cuda/PtxEmulator.h"
#include "nibble/Formats/Half.h"
#include "nibble/Support/Strings.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>

namespace nibble::cuda::emu {

namespace {

using formats::bf16ToFloat;
using formats::floatToBF16;
using formats::floatToHalf;
using formats::halfToFloat;

enum class T : uint8_t {
  None, B8, B16, B32, B64, U8, U16, U32, U64, S8, S16, S32, S64,
  F16, F16x2, BF16, BF16x2, F32, F64, Pred, E4M3x2, E5M2x2
};

__attribute__((always_inline)) inline unsigned bitsOf(T t) {
  switch (t) {
  case T::B8: case T::U8: case T::S8: return 8;
  case T::B16: case T::U16: case T::S16: case T::F16: case T::BF16:
  case T::E4M3x2: case T::E5M2x2: return 16;
  case T::B32: case T::U32: case T::S32: case T::F32: case T::F16x2:
  case T::BF16x2: return 32;
  case T::B64: case T::U64: case T::S64: case T::F64: return 64;
  case T::Pred: return 1;
  case T::None: return 0;
  }
  return 0;
}
__attribute__((always_inline)) inline bool isSigned(T t) {
  return t == T::S8 || t == T::S16 || t == T::S32 || t == T::S64;
}

std::optional<T> typeNamed(const std::string &s) {
  static const std::map<std::string, T> names = {
      {"b8", T::B8},       {"b16", T::B16},   {"b32", T::B32},
      {"b64", T::B64},     {"u8", T::U8},     {"u16", T::U16},
      {"u32", T::U32},     {"u64", T::U64},   {"s8", T::S8},
      {"s16", T::S16},     {"s32", T::S32},   {"s64", T::S64},
      {"f16", T::F16},     {"f16x2", T::F16x2}, {"bf16", T::BF16},
      {"bf16x2", T::BF16x2}, {"f32", T::F32}, {"f64", T::F64},
      {"pred", T::Pred},   {"e4m3x2", T::E4M3x2}, {"e5m2x2", T::E5M2x2}};
  auto it = names.find(s);
  if (it == names.end())
    return std::nullopt;
  return it->second;
}

/// `v` (whose low bitsOf(t) bits hold a value of type t) widened to 64
/// bits by t's signedness.
__attribute__((always_inline)) inline uint64_t extend(uint64_t v, T t) {
  unsigned n = bitsOf(t);
  if (n == 0 || n >= 64)
    return v;
  uint64_t mask = (uint64_t(1) << n) - 1;
  v &= mask;
  if (isSigned(t) && (v >> (n - 1)) & 1)
    v |= ~mask;
  return v;
}

float f32(uint64_t v) {
  float f;
  uint32_t u = uint32_t(v);
  std::memcpy(&f, &u, 4);
  return f;
}
uint64_t bitsF32(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
double f64(uint64_t v) {
  double d;
  std::memcpy(&d, &v, 8);
  return d;
}
uint64_t bitsF64(double d) {
  uint64_t u;
  std::memcpy(&u, &d, 8);
  return u;
}
float flush(float f, bool ftz) {
  return ftz && std::fpclassify(f) == FP_SUBNORMAL ? std::copysign(0.0f, f)
                                                   : f;
}

/// fp8 e4m3fn (no infinities; S.1111.111 is NaN) as f16 bits: exact.
uint16_t e4m3ToHalf(uint8_t b) {
  const unsigned e = (b >> 3) & 15, m = b & 7;
  float v;
  if (e == 15 && m == 7)
    v = NAN;
  else if (e == 0)
    v = std::ldexp(float(m), -9);
  else
    v = std::ldexp(1.0f + float(m) / 8.0f, int(e) - 7);
  return floatToHalf(b & 0x80 ? -v : v);
}

enum class K : uint8_t { None, Reg, Imm, Special, Addr, Vec, Label };
enum class Sp : uint8_t {
  TidX, TidY, TidZ, NtidX, NtidY, NtidZ, CtaidX, CtaidY, CtaidZ,
  NctaidX, NctaidY, NctaidZ, LaneId, WarpId
};

/// Kept small: the interpreter's loop reads these for every instruction.
struct Operand {
  K kind = K::None;
  bool param = false;   ///< Addr in the parameter buffer
  bool hasBase = false; ///< Addr with a base register
  Sp sp = Sp::TidX;
  uint8_t nvec = 0;     ///< Vec: how many of `vec`
  int32_t predOut = -1; ///< "d|p": the predicate slot of p
  uint32_t reg = 0;     ///< Reg; Addr's base register
  int64_t imm = 0;      ///< Imm bits; Addr offset; Label target
  uint32_t vec[4] = {}; ///< Vec registers (UINT32_MAX: the sink `_`)
};

enum class Op : uint8_t {
  Add, Sub, Mul, Mad, Fma, Div, Rem, Min, Max, Neg, Abs, And, Or, Xor, Not,
  Shl, Shr, Bfe, Rcp, Sqrt, Rsqrt, Ex2, Lg2, Sin, Cos, Setp, Selp, Mov, Cvt,
  Cvta, Ld, St, Shfl, Bra, Ret, Popc, Clz
};

enum class Cmp : uint8_t {
  Eq, Ne, Lt, Le, Gt, Ge, Lo, Ls, Hi, Hs, Equ, Neu, Ltu, Leu, Gtu, Geu,
  Num, Nan
};

enum class Shfl : uint8_t { Up, Down, Bfly, Idx };
enum class Round : uint8_t { None, Rn, Rz, Rm, Rp, Rni, Rzi, Rmi, Rpi };

struct Inst {
  Op op = Op::Mov;
  T type = T::None, type2 = T::None;
  Cmp cmp = Cmp::Eq;
  Shfl mode = Shfl::Bfly;
  Round round = Round::None;
  bool ftz = false, wide = false, hi = false, paramSpace = false;
  uint8_t vec = 1;
  int32_t guard = -1;
  bool guardNeg = false;
  uint8_t n = 0;
  Operand o[5];
  uint32_t line = 0;
};

} // namespace

struct Kernel {
  std::string name;
  std::vector<size_t> paramSizes, paramOffsets;
  std::map<std::string, size_t> paramOffsetByName;
  size_t paramBytes = 0;
  uint32_t numRegs = 0;
  std::vector<Inst> code;
  std::vector<std::string> text; ///< each instruction as written (messages)
};

Memory::~Memory() = default;

bool Allocations::remove(uint64_t base) {
  last_ = {0, 0};
  return ranges_.erase(base) == 1;
}

bool Allocations::contains(uint64_t address, size_t bytes) const {
  if (address >= last_.first && address + bytes <= last_.first + last_.second)
    return true;
  auto it = ranges_.upper_bound(address);
  if (it == ranges_.begin())
    return false;
  --it;
  if (address + bytes > it->first + it->second)
    return false;
  last_ = *it;
  return true;
}
Module::~Module() = default;

const Kernel *Module::kernel(const std::string &name) const {
  for (const auto &k : kernels_)
    if (k->name == name)
      return k.get();
  return nullptr;
}

std::vector<std::string> Module::kernelNames() const {
  std::vector<std::string> names;
  for (const auto &k : kernels_)
    names.push_back(k->name);
  return names;
}

std::vector<size_t> parameterSizes(const Kernel &kernel) {
  return kernel.paramSizes;
}
const std::string &kernelName(const Kernel &kernel) { return kernel.name; }

//===----------------------------------------------------------------------===//
// Parsing
//===----------------------------------------------------------------------===//

namespace {

using ::nibble::support::trim;

bool isIdent(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$' ||
         c == '.' || c == '%';
}

/// Comments become spaces (newlines kept, so offsets keep their lines).
std::string stripComments(const std::string &in) {
  std::string s = in;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] == '/' && s[i + 1] == '/') {
      while (i < s.size() && s[i] != '\n')
        s[i++] = ' ';
    } else if (s[i] == '/' && s[i + 1] == '*') {
      while (i + 1 < s.size() && !(s[i] == '*' && s[i + 1] == '/')) {
        if (s[i] != '\n')
          s[i] = ' ';
        ++i;
      }
      if (i + 1 < s.size())
        s[i] = s[i + 1] = ' ';
    }
  }
  return s;
}

std::vector<std::string> splitTop(const std::string &s, char sep) {
  std::vector<std::string> out;
  int depth = 0;
  std::string cur;
  for (char c : s) {
    if (c == '{' || c == '[')
      ++depth;
    if (c == '}' || c == ']')
      --depth;
    if (c == sep && depth == 0) {
      out.push_back(trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!trim(cur).empty() || !out.empty())
    out.push_back(trim(cur));
  return out;
}

bool parseInt(const std::string &s, int64_t &v) {
  if (s.empty())
    return false;
  size_t i = 0;
  bool neg = false;
  if (s[0] == '-' || s[0] == '+') {
    neg = s[0] == '-';
    i = 1;
  }
  std::string body = s.substr(i);
  if (body.empty())
    return false;
  uint64_t u = 0;
  char *end = nullptr;
  if (body.size() > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X'))
    u = std::strtoull(body.c_str() + 2, &end, 16);
  else if (std::isdigit(static_cast<unsigned char>(body[0])))
    u = std::strtoull(body.c_str(), &end, 10);
  else
    return false;
  if (*end == 'U' || *end == 'u')
    ++end;
  if (*end)
    return false;
  v = neg ? -int64_t(u) : int64_t(u);
  return true;
}

/// 1-based line numbers of offsets into a text, by binary search over the
/// line starts (the parser asks once per statement).
struct LineIndex {
  std::vector<size_t> starts{0};
  explicit LineIndex(const std::string &text) {
    for (size_t i = 0; i < text.size(); ++i)
      if (text[i] == '\n')
        starts.push_back(i + 1);
  }
  uint32_t at(size_t offset) const {
    return uint32_t(std::upper_bound(starts.begin(), starts.end(), offset) -
                    starts.begin());
  }
};

struct Parser {
  const std::string &text; // comment-free
  const LineIndex &lines;
  Kernel &k;
  std::string &error;
  std::map<std::string, uint32_t> single;                       // %name
  std::map<std::string, std::pair<uint32_t, uint32_t>> ranges;  // %p<N>
  std::map<std::string, uint32_t> labels;
  std::string pendingLabel;                  // the operand just read
  std::vector<std::pair<size_t, std::string>> branches; // (inst, label)

  uint32_t lineAt(size_t offset) const { return lines.at(offset); }
  bool fail(uint32_t line, const std::string &what) {
    error = "PTX line " + std::to_string(line) + " (" + k.name + "): " + what;
    return false;
  }

  bool declare(const std::string &decl, uint32_t line) {
    // .reg .TYPE a<N>, b, ...
    std::string rest = trim(decl.substr(4));
    size_t sp = rest.find_first_of(" \t");
    if (rest.empty() || rest[0] != '.' || sp == std::string::npos)
      return fail(line, "expected `.reg .TYPE NAME` in \"" + decl + "\"");
    for (const std::string &item : splitTop(rest.substr(sp), ',')) {
      std::string name = trim(item);
      size_t lt = name.find('<');
      if (lt != std::string::npos) {
        int64_t n = 0;
        if (name.back() != '>' ||
            !parseInt(name.substr(lt + 1, name.size() - lt - 2), n) || n < 0)
          return fail(line, "bad register range \"" + name + "\"");
        ranges[name.substr(0, lt)] = {k.numRegs, uint32_t(n)};
        k.numRegs += uint32_t(n);
      } else {
        single[name] = k.numRegs++;
      }
    }
    return true;
  }

  bool reg(const std::string &name, uint32_t line, uint32_t &slot) {
    auto s = single.find(name);
    if (s != single.end()) {
      slot = s->second;
      return true;
    }
    size_t d = name.size();
    while (d > 0 && std::isdigit(static_cast<unsigned char>(name[d - 1])))
      --d;
    auto r = ranges.find(name.substr(0, d));
    if (d < name.size() && r != ranges.end()) {
      uint32_t i = uint32_t(std::stoul(name.substr(d)));
      if (i < r->second.second) {
        slot = r->second.first + i;
        return true;
      }
    }
    return fail(line, "undeclared register " + name);
  }

  bool operand(const std::string &s, uint32_t line, Operand &o) {
    if (s.empty())
      return fail(line, "empty operand");
    if (s[0] == '{') {
      o.kind = K::Vec;
      std::vector<std::string> elems = splitTop(s.substr(1, s.size() - 2), ',');
      if (elems.size() > 4)
        return fail(line, "vectors of more than 4 elements are not "
                          "implemented (" + s + ")");
      for (const std::string &e : elems) {
        uint32_t slot = UINT32_MAX;
        if (e != "_" && !reg(e, line, slot))
          return false;
        o.vec[o.nvec++] = slot;
      }
      return true;
    }
    if (s[0] == '[') {
      o.kind = K::Addr;
      std::string in = trim(s.substr(1, s.size() - 2));
      size_t plus = in.find_first_of("+-", 1);
      std::string base = trim(in.substr(0, plus));
      if (plus != std::string::npos) {
        std::string off = in.substr(plus);
        if (off[0] == '+')
          off = trim(off.substr(1));
        if (!parseInt(off, o.imm))
          return fail(line, "bad address offset in " + s);
      }
      if (base[0] == '%') {
        o.hasBase = true;
        return reg(base, line, o.reg);
      }
      auto p = k.paramOffsetByName.find(base);
      if (p != k.paramOffsetByName.end()) {
        o.param = true;
        o.imm += int64_t(p->second);
        return true;
      }
      int64_t abs = 0;
      if (parseInt(base, abs)) {
        o.imm += abs;
        return true;
      }
      return fail(line, "address " + s +
                            " names neither a register nor a parameter "
                            "(module variables are not supported)");
    }
    if (s[0] == '%') {
      size_t bar = s.find('|');
      std::string name = s.substr(0, bar);
      static const std::map<std::string, Sp> specials = {
          {"%tid.x", Sp::TidX},       {"%tid.y", Sp::TidY},
          {"%tid.z", Sp::TidZ},       {"%ntid.x", Sp::NtidX},
          {"%ntid.y", Sp::NtidY},     {"%ntid.z", Sp::NtidZ},
          {"%ctaid.x", Sp::CtaidX},   {"%ctaid.y", Sp::CtaidY},
          {"%ctaid.z", Sp::CtaidZ},   {"%nctaid.x", Sp::NctaidX},
          {"%nctaid.y", Sp::NctaidY}, {"%nctaid.z", Sp::NctaidZ},
          {"%laneid", Sp::LaneId},    {"%warpid", Sp::WarpId}};
      auto sp = specials.find(name);
      if (sp != specials.end()) {
        o.kind = K::Special;
        o.sp = sp->second;
        return true;
      }
      o.kind = K::Reg;
      if (!reg(name, line, o.reg))
        return false;
      if (bar != std::string::npos) {
        uint32_t p;
        if (!reg(trim(s.substr(bar + 1)), line, p))
          return false;
        o.predOut = int32_t(p);
      }
      return true;
    }
    if (s.size() == 10 && s[0] == '0' && (s[1] == 'f' || s[1] == 'F')) {
      o.kind = K::Imm;
      o.imm = int64_t(std::strtoull(s.c_str() + 2, nullptr, 16));
      return true;
    }
    if (s.size() == 18 && s[0] == '0' && (s[1] == 'd' || s[1] == 'D')) {
      o.kind = K::Imm;
      o.imm = int64_t(std::strtoull(s.c_str() + 2, nullptr, 16));
      return true;
    }
    if (parseInt(s, o.imm)) {
      o.kind = K::Imm;
      return true;
    }
    if (s[0] == '$' || std::isalpha(static_cast<unsigned char>(s[0])) ||
        s[0] == '_') {
      o.kind = K::Label;
      pendingLabel = s;
      return true;
    }
    return fail(line, "cannot read operand \"" + s + "\"");
  }

  bool instruction(const std::string &stmt, uint32_t line) {
    Inst in;
    in.line = line;
    std::string s = stmt;
    if (s[0] == '@') {
      size_t sp = s.find_first_of(" \t");
      std::string g = s.substr(1, sp - 1);
      if (!g.empty() && g[0] == '!') {
        in.guardNeg = true;
        g = g.substr(1);
      }
      uint32_t slot;
      if (!reg(g, line, slot))
        return false;
      in.guard = int32_t(slot);
      s = trim(s.substr(sp));
    }
    size_t sp = s.find_first_of(" \t");
    std::string opcode = s.substr(0, sp);
    std::string rest = sp == std::string::npos ? "" : trim(s.substr(sp));
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
      size_t dot = opcode.find('.', start);
      parts.push_back(opcode.substr(start, dot - start));
      if (dot == std::string::npos)
        break;
      start = dot + 1;
    }
    static const std::map<std::string, Op> ops = {
        {"add", Op::Add},   {"sub", Op::Sub},     {"mul", Op::Mul},
        {"mad", Op::Mad},   {"fma", Op::Fma},     {"div", Op::Div},
        {"rem", Op::Rem},   {"min", Op::Min},     {"max", Op::Max},
        {"neg", Op::Neg},   {"abs", Op::Abs},     {"and", Op::And},
        {"or", Op::Or},     {"xor", Op::Xor},     {"not", Op::Not},
        {"shl", Op::Shl},   {"shr", Op::Shr},     {"bfe", Op::Bfe},
        {"rcp", Op::Rcp},   {"sqrt", Op::Sqrt},   {"rsqrt", Op::Rsqrt},
        {"ex2", Op::Ex2},   {"lg2", Op::Lg2},     {"sin", Op::Sin},
        {"cos", Op::Cos},   {"setp", Op::Setp},   {"selp", Op::Selp},
        {"mov", Op::Mov},   {"cvt", Op::Cvt},     {"cvta", Op::Cvta},
        {"ld", Op::Ld},     {"st", Op::St},       {"shfl", Op::Shfl},
        {"bra", Op::Bra},   {"ret", Op::Ret},     {"exit", Op::Ret},
        {"popc", Op::Popc}, {"clz", Op::Clz}};
    auto op = ops.find(parts[0]);
    if (op == ops.end())
      return fail(line, "the emulator does not implement \"" + parts[0] +
                            "\" (in \"" + stmt + "\")");
    in.op = op->second;
    static const std::map<std::string, Cmp> cmps = {
        {"eq", Cmp::Eq},   {"ne", Cmp::Ne},   {"lt", Cmp::Lt},
        {"le", Cmp::Le},   {"gt", Cmp::Gt},   {"ge", Cmp::Ge},
        {"lo", Cmp::Lo},   {"ls", Cmp::Ls},   {"hi", Cmp::Hi},
        {"hs", Cmp::Hs},   {"equ", Cmp::Equ}, {"neu", Cmp::Neu},
        {"ltu", Cmp::Ltu}, {"leu", Cmp::Leu}, {"gtu", Cmp::Gtu},
        {"geu", Cmp::Geu}, {"num", Cmp::Num}, {"nan", Cmp::Nan}};
    static const std::map<std::string, Round> rounds = {
        {"rn", Round::Rn},   {"rz", Round::Rz},   {"rm", Round::Rm},
        {"rp", Round::Rp},   {"rni", Round::Rni}, {"rzi", Round::Rzi},
        {"rmi", Round::Rmi}, {"rpi", Round::Rpi}};
    for (size_t i = 1; i < parts.size(); ++i) {
      const std::string &m = parts[i];
      if (auto t = typeNamed(m)) {
        (in.type == T::None ? in.type : in.type2) = *t;
      } else if (in.op == Op::Setp && cmps.count(m)) {
        in.cmp = cmps.at(m);
      } else if (rounds.count(m)) {
        in.round = rounds.at(m);
      } else if (m == "ftz") {
        in.ftz = true;
      } else if (m == "wide") {
        in.wide = true;
      } else if (m == "hi") {
        in.hi = true;
      } else if (m == "v2" || m == "v4") {
        in.vec = uint8_t(m[1] - '0');
      } else if (m == "param") {
        in.paramSpace = true;
      } else if (m == "shared" || m == "local" || m == "const" ||
                 m == "tex" || m == "sat") {
        return fail(line, "the emulator does not implement ." + m + " (in \"" +
                              stmt + "\")");
      } else if (in.op == Op::Shfl &&
                 (m == "up" || m == "down" || m == "bfly" || m == "idx")) {
        in.mode = m == "up"     ? Shfl::Up
                  : m == "down" ? Shfl::Down
                  : m == "bfly" ? Shfl::Bfly
                                : Shfl::Idx;
      }
      // Everything else (lo, approx, full, sync, uni, global, to, nc,
      // cache and eviction hints) does not change the result here.
    }
    if (in.op == Op::Setp && parts.size() > 3 &&
        (opcode.find(".and.") != std::string::npos ||
         opcode.find(".or.") != std::string::npos ||
         opcode.find(".xor.") != std::string::npos))
      return fail(line, "setp with a combining predicate is not implemented");
    std::vector<std::string> operands =
        rest.empty() ? std::vector<std::string>{} : splitTop(rest, ',');
    if (operands.size() > 5)
      return fail(line, "too many operands in \"" + stmt + "\"");
    in.n = uint8_t(operands.size());
    for (size_t i = 0; i < operands.size(); ++i) {
      if (!operand(operands[i], line, in.o[i]))
        return false;
      if (in.o[i].kind == K::Label)
        branches.push_back({k.code.size(), pendingLabel});
    }
    k.code.push_back(in);
    k.text.push_back(stmt);
    return true;
  }

  bool body(size_t begin, size_t end) {
    size_t pos = begin;
    while (pos < end) {
      size_t semi = text.find(';', pos);
      if (semi == std::string::npos || semi > end)
        semi = end;
      std::string stmt = text.substr(pos, semi - pos);
      size_t stmtStart = pos;
      pos = semi + 1;
      // Scope braces and labels in front of the statement.
      while (true) {
        size_t lead = stmt.find_first_not_of(" \t\r\n");
        if (lead == std::string::npos) {
          stmt.clear();
          break;
        }
        stmtStart += lead;
        stmt = stmt.substr(lead);
        if (stmt[0] == '{' || stmt[0] == '}') {
          stmt = stmt.substr(1);
          stmtStart += 1;
          continue;
        }
        size_t i = 0;
        while (i < stmt.size() && isIdent(stmt[i]) && stmt[i] != '%')
          ++i;
        if (i > 0 && i < stmt.size() && stmt[i] == ':' && stmt[0] != '.') {
          labels[stmt.substr(0, i)] = uint32_t(k.code.size());
          stmt = stmt.substr(i + 1);
          stmtStart += i + 1;
          continue;
        }
        break;
      }
      stmt = trim(stmt);
      if (stmt.empty())
        continue;
      // A trailing scope brace (the statement before a `}`) cannot occur:
      // `}` follows a `;`. Whitespace inside is normalised for messages.
      for (char &c : stmt)
        if (c == '\n' || c == '\t' || c == '\r')
          c = ' ';
      const uint32_t line = lineAt(stmtStart);
      if (stmt[0] == '.') {
        if (stmt.rfind(".reg", 0) == 0) {
          if (!declare(stmt, line))
            return false;
        } else if (stmt.rfind(".pragma", 0) == 0 ||
                   stmt.rfind(".loc", 0) == 0) {
        } else {
          return fail(line, "the emulator does not implement the directive \"" +
                                stmt + "\"");
        }
        continue;
      }
      if (!instruction(stmt, line))
        return false;
    }
    for (const auto &[at, name] : branches) {
      auto l = labels.find(name);
      if (l == labels.end())
        return fail(k.code[at].line, "unknown label " + name);
      for (unsigned i = 0; i < k.code[at].n; ++i)
        if (k.code[at].o[i].kind == K::Label)
          k.code[at].o[i].imm = l->second;
    }
    return true;
  }
};

} // namespace

std::unique_ptr<Module> Module::parse(const std::string &ptx,
                                      std::string &error) {
  const std::string text = stripComments(ptx);
  std::unique_ptr<Module> m(new Module());
  const LineIndex lines(text);
  auto lineAt = [&](size_t off) { return lines.at(off); };
  size_t target = text.find(".target");
  if (target == std::string::npos) {
    error = "PTX: no .target directive";
    return nullptr;
  }
  {
    size_t sm = text.find("sm_", target);
    size_t eol = text.find('\n', target);
    if (sm == std::string::npos || sm > eol) {
      error = "PTX line " + std::to_string(lineAt(target)) +
              ": expected `.target sm_XY`";
      return nullptr;
    }
    m->sm_ = std::atoi(text.c_str() + sm + 3);
    size_t e = sm + 3;
    while (e < text.size() && std::isdigit(static_cast<unsigned char>(text[e])))
      ++e;
    m->arch_ = e < text.size() && text[e] == 'a';
  }
  // Module-level state the emulator does not model.
  for (const char *dir : {".func", ".global ", ".shared", ".const "}) {
    size_t at = text.find(dir);
    if (at != std::string::npos) {
      error = "PTX line " + std::to_string(lineAt(at)) +
              ": the emulator does not implement " + trim(dir) +
              " (calls, module variables and shared memory)";
      return nullptr;
    }
  }
  size_t pos = 0;
  while ((pos = text.find(".entry", pos)) != std::string::npos) {
    auto k = std::make_unique<Kernel>();
    size_t nameStart = text.find_first_not_of(" \t\r\n", pos + 6);
    size_t nameEnd = nameStart;
    while (nameEnd < text.size() && isIdent(text[nameEnd]))
      ++nameEnd;
    k->name = text.substr(nameStart, nameEnd - nameStart);
    size_t open = text.find('(', nameEnd), close = text.find(')', nameEnd);
    size_t brace = text.find('{', nameEnd);
    if (brace == std::string::npos) {
      error = "PTX line " + std::to_string(lineAt(pos)) + ": entry " +
              k->name + " has no body";
      return nullptr;
    }
    if (open != std::string::npos && open < brace) {
      for (const std::string &p :
           splitTop(text.substr(open + 1, close - open - 1), ',')) {
        if (p.empty())
          continue;
        if (p.find('[') != std::string::npos) {
          error = "PTX line " + std::to_string(lineAt(open)) + " (" + k->name +
                  "): array parameters are not implemented (\"" + p + "\")";
          return nullptr;
        }
        std::vector<std::string> toks;
        size_t i = 0;
        while (i < p.size()) {
          size_t a = p.find_first_not_of(" \t\r\n", i);
          if (a == std::string::npos)
            break;
          size_t b = p.find_first_of(" \t\r\n", a);
          toks.push_back(p.substr(a, b - a));
          i = b == std::string::npos ? p.size() : b;
        }
        size_t size = 0;
        for (const std::string &t : toks)
          if (t.size() > 1 && t[0] == '.')
            if (auto ty = typeNamed(t.substr(1)))
              size = std::max<size_t>(1, bitsOf(*ty) / 8);
        if (size == 0 || toks.size() < 2) {
          error = "PTX line " + std::to_string(lineAt(open)) + " (" + k->name +
                  "): cannot read parameter \"" + p + "\"";
          return nullptr;
        }
        k->paramBytes = (k->paramBytes + size - 1) / size * size;
        k->paramOffsetByName[toks.back()] = k->paramBytes;
        k->paramOffsets.push_back(k->paramBytes);
        k->paramSizes.push_back(size);
        k->paramBytes += size;
      }
    }
    int depth = 0;
    size_t end = brace;
    for (; end < text.size(); ++end) {
      if (text[end] == '{')
        ++depth;
      else if (text[end] == '}' && --depth == 0)
        break;
    }
    if (end >= text.size()) {
      error = "PTX line " + std::to_string(lineAt(brace)) + " (" + k->name +
              "): the body's `{` is never closed";
      return nullptr;
    }
    Parser parser{text, lines, *k, error, {}, {}, {}};
    if (!parser.body(brace + 1, end))
      return nullptr;
    m->kernels_.push_back(std::move(k));
    pos = end;
  }
  return m;
}

//===----------------------------------------------------------------------===//
// Running
//===----------------------------------------------------------------------===//

namespace {

constexpr unsigned kWarp = 32;

struct Thread {
  uint32_t pc = 0;
  bool done = false, waiting = false;
  uint64_t *r = nullptr;
  uint32_t tid[3] = {0, 0, 0};
  uint32_t linear = 0;
  uint64_t shflValue = 0, shflB = 0, shflC = 0, shflMask = 0;
};

struct Runner {
  const Kernel &k;
  Dim3 grid, block, cta;
  const std::vector<uint8_t> &params;
  const Memory &memory;
  std::string &error;
  uint64_t executed = 0;

  bool fault(const Thread &t, const Inst &in, const std::string &what) {
    error = "PTX emulator: " + k.name + ", line " + std::to_string(in.line) +
            " (\"" + k.text[size_t(&in - k.code.data())] + "\"), block (" + std::to_string(cta.x) + "," +
            std::to_string(cta.y) + "," + std::to_string(cta.z) +
            ") thread (" + std::to_string(t.tid[0]) + "," +
            std::to_string(t.tid[1]) + "," + std::to_string(t.tid[2]) +
            "): " + what;
    return false;
  }

  uint64_t special(Sp sp, const Thread &t) const {
    switch (sp) {
    case Sp::TidX: return t.tid[0];
    case Sp::TidY: return t.tid[1];
    case Sp::TidZ: return t.tid[2];
    case Sp::NtidX: return block.x;
    case Sp::NtidY: return block.y;
    case Sp::NtidZ: return block.z;
    case Sp::CtaidX: return cta.x;
    case Sp::CtaidY: return cta.y;
    case Sp::CtaidZ: return cta.z;
    case Sp::NctaidX: return grid.x;
    case Sp::NctaidY: return grid.y;
    case Sp::NctaidZ: return grid.z;
    case Sp::LaneId: return t.linear % kWarp;
    case Sp::WarpId: return t.linear / kWarp;
    }
    return 0;
  }

  __attribute__((always_inline)) uint64_t val(const Operand &o, const Thread &t) const {
    switch (o.kind) {
    case K::Reg: return t.r[o.reg];
    case K::Imm: return uint64_t(o.imm);
    case K::Special: return special(o.sp, t);
    default: return 0;
    }
  }

  /// The host address of an access, checked against the allocations and
  /// the access's natural alignment.
  bool address(Thread &t, const Inst &in, const Operand &o, size_t bytes,
               uint8_t *&p) {
    if (o.kind != K::Addr)
      return fault(t, in, "expected an address operand");
    if (in.paramSpace || o.param) {
      uint64_t off = uint64_t(o.imm) + (o.hasBase ? t.r[o.reg] : 0);
      if (off + bytes > params.size())
        return fault(t, in, "parameter offset " + std::to_string(off) +
                                " is outside the kernel's parameters");
      p = const_cast<uint8_t *>(params.data()) + off;
      return true;
    }
    uint64_t a = (o.hasBase ? t.r[o.reg] : 0) + uint64_t(o.imm);
    if (a % bytes) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)a);
      return fault(t, in, std::string("misaligned address ") + buf + " for a " +
                              std::to_string(bytes) + "-byte access");
    }
    if (!memory.contains(a, bytes)) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)a);
      return fault(t, in, std::string("address ") + buf + " (" +
                              std::to_string(bytes) +
                              " bytes) is outside every allocation");
    }
    p = reinterpret_cast<uint8_t *>(uintptr_t(a));
    return true;
  }

  static bool compare(Cmp c, T t, uint64_t a, uint64_t b) {
    if (t == T::F32 || t == T::F64) {
      double x = t == T::F32 ? double(f32(a)) : f64(a);
      double y = t == T::F32 ? double(f32(b)) : f64(b);
      bool unord = std::isnan(x) || std::isnan(y);
      switch (c) {
      case Cmp::Eq: return !unord && x == y;
      case Cmp::Ne: return !unord && x != y;
      case Cmp::Lt: return !unord && x < y;
      case Cmp::Le: return !unord && x <= y;
      case Cmp::Gt: return !unord && x > y;
      case Cmp::Ge: return !unord && x >= y;
      case Cmp::Equ: return unord || x == y;
      case Cmp::Neu: return unord || x != y;
      case Cmp::Ltu: return unord || x < y;
      case Cmp::Leu: return unord || x <= y;
      case Cmp::Gtu: return unord || x > y;
      case Cmp::Geu: return unord || x >= y;
      case Cmp::Num: return !unord;
      case Cmp::Nan: return unord;
      default: return false;
      }
    }
    a = extend(a, t);
    b = extend(b, t);
    const bool s = isSigned(t);
    const int64_t sa = int64_t(a), sb = int64_t(b);
    switch (c) {
    case Cmp::Eq: return a == b;
    case Cmp::Ne: return a != b;
    case Cmp::Lt: return s ? sa < sb : a < b;
    case Cmp::Le: return s ? sa <= sb : a <= b;
    case Cmp::Gt: return s ? sa > sb : a > b;
    case Cmp::Ge: return s ? sa >= sb : a >= b;
    case Cmp::Lo: return a < b;
    case Cmp::Ls: return a <= b;
    case Cmp::Hi: return a > b;
    case Cmp::Hs: return a >= b;
    default: return false;
    }
  }

  void write(Thread &t, const Operand &d, uint64_t v, T type) {
    t.r[d.reg] = extend(v, type);
  }

  /// f32 -> integer with PTX's saturation (NaN -> 0).
  static uint64_t floatToInt(double x, Round r, T to) {
    if (std::isnan(x))
      return 0;
    switch (r) {
    case Round::Rni: x = std::nearbyint(x); break;
    case Round::Rmi: x = std::floor(x); break;
    case Round::Rpi: x = std::ceil(x); break;
    default: x = std::trunc(x); break;
    }
    const unsigned n = bitsOf(to);
    if (isSigned(to)) {
      double lo = -std::ldexp(1.0, int(n) - 1), hi = -lo - 1;
      x = std::min(std::max(x, lo), hi);
      return uint64_t(int64_t(x));
    }
    double hi = std::ldexp(1.0, int(n)) - 1;
    x = std::min(std::max(x, 0.0), hi);
    return uint64_t(x);
  }

  bool cvt(Thread &t, const Inst &in) {
    const T to = in.type, from = in.type2;
    const uint64_t a = val(in.o[1], t);
    const bool fTo = to == T::F32 || to == T::F64 || to == T::F16 ||
                     to == T::BF16;
    const bool fFrom = from == T::F32 || from == T::F64 || from == T::F16 ||
                       from == T::BF16;
    auto asDouble = [&](uint64_t v, T ty) -> double {
      switch (ty) {
      case T::F32: return f32(v);
      case T::F64: return f64(v);
      case T::F16: return halfToFloat(uint16_t(v));
      case T::BF16: return bf16ToFloat(uint16_t(v));
      default: return 0;
      }
    };
    if (to == T::F16x2 && (from == T::E4M3x2 || from == T::E5M2x2)) {
      uint16_t lo = 0, hi = 0;
      if (from == T::E4M3x2) {
        lo = e4m3ToHalf(uint8_t(a));
        hi = e4m3ToHalf(uint8_t(a >> 8));
      } else {
        lo = uint16_t((a & 0xff) << 8);
        hi = uint16_t(a & 0xff00);
      }
      write(t, in.o[0], uint64_t(lo) | uint64_t(hi) << 16, T::B32);
      return true;
    }
    if (to == T::F16x2 && from == T::F32 && in.n == 3) {
      const uint16_t hi = floatToHalf(f32(a));
      const uint16_t lo = floatToHalf(f32(val(in.o[2], t)));
      write(t, in.o[0], uint64_t(lo) | uint64_t(hi) << 16, T::B32);
      return true;
    }
    if (fTo && fFrom) {
      double x = asDouble(a, from);
      uint64_t out = 0;
      switch (to) {
      case T::F32: out = bitsF32(flush(float(x), in.ftz)); break;
      case T::F64: out = bitsF64(x); break;
      case T::F16: out = floatToHalf(float(x)); break;
      case T::BF16: out = floatToBF16(float(x)); break;
      default: break;
      }
      write(t, in.o[0], out, to);
      return true;
    }
    if (fTo) { // integer -> float
      uint64_t e = extend(a, from);
      double x = isSigned(from) ? double(int64_t(e)) : double(e);
      uint64_t out = to == T::F32   ? bitsF32(float(x))
                     : to == T::F64 ? bitsF64(x)
                     : to == T::F16 ? floatToHalf(float(x))
                                    : floatToBF16(float(x));
      write(t, in.o[0], out, to);
      return true;
    }
    if (fFrom) { // float -> integer
      write(t, in.o[0], floatToInt(asDouble(a, from), in.round, to), to);
      return true;
    }
    if (bitsOf(to) && bitsOf(from)) { // integer -> integer
      write(t, in.o[0], extend(a, from), to);
      return true;
    }
    return fault(t, in, "this conversion is not implemented");
  }

  /// `op` on floats of type F (PTX's .rn results; the .approx forms as
  /// the C library computes them). False for an op floats do not have.
  template <typename F>
  static bool floatOp(Op op, F x, F y, F w, F &r) {
    switch (op) {
    case Op::Add: r = x + y; return true;
    case Op::Sub: r = x - y; return true;
    case Op::Mul: r = x * y; return true;
    case Op::Fma: case Op::Mad: r = std::fma(x, y, w); return true;
    case Op::Div: r = x / y; return true;
    case Op::Min: r = std::fmin(x, y); return true;
    case Op::Max: r = std::fmax(x, y); return true;
    case Op::Neg: r = -x; return true;
    case Op::Abs: r = std::fabs(x); return true;
    case Op::Rcp: r = F(1) / x; return true;
    case Op::Sqrt: r = std::sqrt(x); return true;
    case Op::Rsqrt: r = F(1) / std::sqrt(x); return true;
    case Op::Ex2: r = std::exp2(x); return true;
    case Op::Lg2: r = std::log2(x); return true;
    case Op::Sin: r = std::sin(x); return true;
    case Op::Cos: r = std::cos(x); return true;
    default: return false;
    }
  }

  bool arith(Thread &t, const Inst &in) {
    const T ty = in.type;
    const uint64_t a = val(in.o[1], t), b = in.n > 2 ? val(in.o[2], t) : 0,
                   c = in.n > 3 ? val(in.o[3], t) : 0;
    if (ty == T::F32) {
      const bool z = in.ftz;
      float r;
      if (!floatOp(in.op, flush(f32(a), z), flush(f32(b), z),
                   flush(f32(c), z), r))
        return fault(t, in, "not implemented for .f32");
      write(t, in.o[0], bitsF32(flush(r, z)), T::B32);
      return true;
    }
    if (ty == T::F64) {
      double r;
      if (!floatOp(in.op, f64(a), f64(b), f64(c), r))
        return fault(t, in, "not implemented for .f64");
      write(t, in.o[0], bitsF64(r), T::F64);
      return true;
    }
    const unsigned n = bitsOf(ty);
    if (n < 8 || n > 64)
      return fault(t, in, "not implemented for this type");
    const bool s = isSigned(ty);
    const uint64_t x = extend(a, ty), y = extend(b, ty), w = extend(c, ty);
    const uint64_t mask = n == 64 ? ~uint64_t(0) : (uint64_t(1) << n) - 1;
    uint64_t r = 0;
    T out = ty;
    switch (in.op) {
    case Op::Add: r = x + y; break;
    case Op::Sub: r = x - y; break;
    case Op::Mul:
    case Op::Mad:
      if (in.wide) {
        r = s ? uint64_t(int64_t(x) * int64_t(y)) : x * y;
        out = s ? T::S64 : T::U64;
      } else if (in.hi) {
        if (n == 64) {
          __int128 p = s ? __int128(int64_t(x)) * __int128(int64_t(y))
                         : __int128((unsigned __int128)x * y);
          r = uint64_t(p >> 64);
        } else {
          r = (s ? uint64_t(int64_t(x) * int64_t(y)) : x * y) >> n;
        }
      } else {
        r = x * y;
      }
      if (in.op == Op::Mad)
        r += in.wide ? extend(c, out) : w;
      break;
    case Op::Div:
    case Op::Rem:
      if ((y & mask) == 0) {
        r = mask; // no trap on the GPU; any value is allowed
      } else if (s) {
        int64_t p = int64_t(x), q = int64_t(y);
        r = uint64_t(in.op == Op::Div ? p / q : p % q);
      } else {
        r = in.op == Op::Div ? (x & mask) / (y & mask) : (x & mask) % (y & mask);
      }
      break;
    case Op::Min:
      r = s ? uint64_t(std::min(int64_t(x), int64_t(y)))
            : std::min(x & mask, y & mask);
      break;
    case Op::Max:
      r = s ? uint64_t(std::max(int64_t(x), int64_t(y)))
            : std::max(x & mask, y & mask);
      break;
    case Op::Neg: r = uint64_t(-int64_t(x)); break;
    case Op::Abs: r = uint64_t(std::llabs(int64_t(x))); break;
    case Op::And: r = x & y; break;
    case Op::Or: r = x | y; break;
    case Op::Xor: r = x ^ y; break;
    case Op::Not: r = ~x; break;
    case Op::Shl: {
      uint64_t sh = uint32_t(b);
      r = sh >= n ? 0 : x << sh;
      break;
    }
    case Op::Shr: {
      uint64_t sh = uint32_t(b);
      if (s)
        r = uint64_t(int64_t(x) >> std::min<uint64_t>(sh, 63));
      else
        r = sh >= n ? 0 : (x & mask) >> sh;
      break;
    }
    case Op::Bfe: {
      // PTX: bits [pos, pos + len) of a, the rest filled with the sign
      // bit a[min(pos + len - 1, msb)] for .s types (0 for .u or len 0).
      const unsigned pos = unsigned(b & 0xff), len = unsigned(c & 0xff);
      const unsigned got = pos >= n ? 0 : std::min(len, n - pos);
      const uint64_t low = got >= 64 ? ~uint64_t(0) : (uint64_t(1) << got) - 1;
      const uint64_t field = got ? ((x & mask) >> pos) & low : 0;
      const bool sbit =
          s && len && ((x >> std::min(pos + len - 1, n - 1)) & 1);
      r = sbit ? field | ~low : field;
      break;
    }
    case Op::Popc: r = uint64_t(__builtin_popcountll(x & mask)); out = T::U32; break;
    case Op::Clz:
      r = (x & mask) == 0 ? n : uint64_t(__builtin_clzll(x & mask) - (64 - n));
      out = T::U32;
      break;
    default:
      return fault(t, in, "not implemented for integer types");
    }
    write(t, in.o[0], r, out);
    return true;
  }

  bool load(Thread &t, const Inst &in) {
    const unsigned size = std::max(1u, bitsOf(in.type) / 8);
    uint8_t *p = nullptr;
    if (!address(t, in, in.o[1], size_t(size) * in.vec, p))
      return false;
    auto one = [&](uint32_t slot, unsigned i) {
      if (slot == UINT32_MAX)
        return;
      uint64_t v = 0;
      std::memcpy(&v, p + size_t(i) * size, size);
      t.r[slot] = extend(v, in.type);
    };
    if (in.o[0].kind == K::Vec) {
      for (unsigned i = 0; i < in.o[0].nvec; ++i)
        one(in.o[0].vec[i], i);
    } else {
      one(in.o[0].reg, 0);
    }
    return true;
  }

  bool store(Thread &t, const Inst &in) {
    const unsigned size = std::max(1u, bitsOf(in.type) / 8);
    uint8_t *p = nullptr;
    if (in.paramSpace)
      return fault(t, in, "stores to parameters are not implemented");
    if (!address(t, in, in.o[0], size_t(size) * in.vec, p))
      return false;
    if (in.o[1].kind == K::Vec) {
      for (unsigned i = 0; i < in.o[1].nvec; ++i) {
        uint64_t v = in.o[1].vec[i] == UINT32_MAX ? 0 : t.r[in.o[1].vec[i]];
        std::memcpy(p + size_t(i) * size, &v, size);
      }
    } else {
      uint64_t v = val(in.o[1], t);
      std::memcpy(p, &v, size);
    }
    return true;
  }

  bool mov(Thread &t, const Inst &in) {
    const Operand &d = in.o[0], &a = in.o[1];
    const unsigned n = bitsOf(in.type);
    if (d.kind == K::Vec) { // unpack
      const unsigned part = n / d.nvec;
      uint64_t v = val(a, t);
      for (unsigned i = 0; i < d.nvec; ++i)
        if (d.vec[i] != UINT32_MAX)
          t.r[d.vec[i]] = (v >> (i * part)) &
                          (part == 64 ? ~uint64_t(0) : (uint64_t(1) << part) - 1);
      return true;
    }
    if (a.kind == K::Vec) { // pack
      const unsigned part = n / a.nvec;
      uint64_t v = 0;
      for (unsigned i = 0; i < a.nvec; ++i) {
        uint64_t e = t.r[a.vec[i]];
        if (part < 64)
          e &= (uint64_t(1) << part) - 1;
        v |= e << (i * part);
      }
      write(t, d, v, in.type);
      return true;
    }
    if (a.kind == K::Label || a.kind == K::Addr)
      return fault(t, in, "taking an address with mov is not implemented");
    write(t, d, val(a, t), in.type == T::Pred ? T::B8 : in.type);
    if (in.type == T::Pred)
      t.r[d.reg] &= 1;
    return true;
  }

  /// Runs `t` until it exits, faults or reaches a shfl.sync (waiting).
  bool run(Thread &t) {
    const std::vector<Inst> &code = k.code;
    while (true) {
      if (t.pc >= code.size()) {
        t.done = true;
        return true;
      }
      const Inst &in = code[t.pc];
      ++executed;
      if (in.guard >= 0 && bool(t.r[in.guard] & 1) == in.guardNeg) {
        ++t.pc;
        continue;
      }
      switch (in.op) {
      case Op::Bra:
        t.pc = uint32_t(in.o[0].imm);
        continue;
      case Op::Ret:
        t.done = true;
        return true;
      case Op::Shfl:
        if (in.n != 5)
          return fault(t, in, "expected shfl.sync d, a, b, c, membermask");
        t.shflValue = val(in.o[1], t);
        t.shflB = val(in.o[2], t);
        t.shflC = val(in.o[3], t);
        t.shflMask = val(in.o[4], t) & 0xffffffffu;
        t.waiting = true;
        return true;
      case Op::Setp: {
        bool p = compare(in.cmp, in.type, val(in.o[1], t), val(in.o[2], t));
        t.r[in.o[0].reg] = p;
        if (in.o[0].predOut >= 0)
          t.r[in.o[0].predOut] = !p;
        break;
      }
      case Op::Selp:
        write(t, in.o[0],
              (t.r[in.o[3].reg] & 1) ? val(in.o[1], t) : val(in.o[2], t),
              in.type);
        break;
      case Op::Mov:
        if (!mov(t, in))
          return false;
        break;
      case Op::Cvta:
        write(t, in.o[0], val(in.o[1], t), T::B64);
        break;
      case Op::Cvt:
        if (!cvt(t, in))
          return false;
        break;
      case Op::Ld:
        if (!load(t, in))
          return false;
        break;
      case Op::St:
        if (!store(t, in))
          return false;
        break;
      case Op::And:
      case Op::Or:
      case Op::Xor:
      case Op::Not:
        if (in.type == T::Pred) {
          uint64_t a = t.r[in.o[1].reg] & 1,
                   b = in.n > 2 ? val(in.o[2], t) & 1 : 0;
          t.r[in.o[0].reg] = in.op == Op::And   ? (a & b)
                             : in.op == Op::Or  ? (a | b)
                             : in.op == Op::Xor ? (a ^ b)
                                                : !a;
          break;
        }
        [[fallthrough]];
      default:
        if (!arith(t, in))
          return false;
        break;
      }
      ++t.pc;
    }
  }

  /// Resolves a shfl.sync every live lane of the warp waits at.
  bool shuffle(std::vector<Thread> &threads, size_t first, size_t count) {
    const Thread *lead = nullptr;
    for (size_t i = first; i < first + count; ++i)
      if (threads[i].waiting) {
        lead = &threads[i];
        break;
      }
    const Inst &in = k.code[lead->pc];
    for (size_t i = first; i < first + count; ++i) {
      const Thread &t = threads[i];
      const unsigned lane = unsigned(i - first);
      const bool named = (lead->shflMask >> lane) & 1;
      if (t.waiting && t.pc != lead->pc)
        return fault(t, in, "the warp's lanes wait at different shuffles "
                            "(line " + std::to_string(k.code[t.pc].line) + ")");
      if (named && !t.waiting)
        return fault(t, in, "membermask names lane " + std::to_string(lane) +
                                ", which exited before the shuffle");
      if (t.waiting && t.shflMask != lead->shflMask)
        return fault(t, in, "lanes disagree on the membermask");
    }
    for (unsigned lane = unsigned(count); lane < kWarp; ++lane)
      if ((lead->shflMask >> lane) & 1)
        return fault(*lead, in, "membermask names lane " +
                                    std::to_string(lane) +
                                    ", beyond the block's threads");
    std::vector<uint64_t> values(count);
    for (size_t i = 0; i < count; ++i)
      values[i] = threads[first + i].shflValue;
    for (size_t i = first; i < first + count; ++i) {
      Thread &t = threads[i];
      if (!t.waiting)
        continue;
      const unsigned lane = unsigned(i - first);
      const unsigned c = unsigned(t.shflC), b = unsigned(t.shflB);
      const unsigned segmask = (c >> 8) & 0x1f, clampv = c & 0x1f;
      const unsigned minLane = lane & segmask;
      const unsigned maxLane = minLane | (clampv & ~segmask);
      int j;
      bool ok;
      switch (in.mode) {
      case Shfl::Up: j = int(lane) - int(b); ok = j >= int(maxLane); break;
      case Shfl::Down: j = int(lane + b); ok = j <= int(maxLane); break;
      case Shfl::Bfly: j = int(lane ^ b); ok = j <= int(maxLane); break;
      default: j = int(minLane | (b & ~segmask)); ok = j <= int(maxLane); break;
      }
      if (!ok)
        j = int(lane);
      if (j >= int(count) || !((t.shflMask >> j) & 1))
        return fault(t, in, "shuffle source lane " + std::to_string(j) +
                                " is not in the membermask");
      write(t, in.o[0], values[size_t(j)], T::B32);
      if (in.o[0].predOut >= 0)
        t.r[in.o[0].predOut] = ok;
      t.waiting = false;
      ++t.pc;
    }
    return true;
  }

  bool runBlock() {
    const size_t n = size_t(this->block.x) * this->block.y * this->block.z;
    std::vector<uint64_t> regs(n * std::max<uint32_t>(k.numRegs, 1), 0);
    std::vector<Thread> threads(n);
    for (size_t i = 0; i < n; ++i) {
      Thread &t = threads[i];
      t.r = regs.data() + i * std::max<uint32_t>(k.numRegs, 1);
      t.linear = uint32_t(i);
      t.tid[0] = uint32_t(i % this->block.x);
      t.tid[1] = uint32_t(i / this->block.x % this->block.y);
      t.tid[2] = uint32_t(i / (size_t(this->block.x) * this->block.y));
    }
    for (size_t first = 0; first < n; first += kWarp) {
      const size_t count = std::min<size_t>(kWarp, n - first);
      while (true) {
        bool anyWaiting = false, allDone = true;
        for (size_t i = first; i < first + count; ++i) {
          Thread &t = threads[i];
          if (!t.done && !t.waiting && !run(t))
            return false;
          anyWaiting |= t.waiting;
          allDone &= t.done;
        }
        if (allDone)
          break;
        if (anyWaiting && !shuffle(threads, first, count))
          return false;
      }
    }
    return true;
  }
};

} // namespace

bool launch(const Kernel &kernel, Dim3 grid, Dim3 block, void *const *params,
            const Memory &memory, std::string &error, LaunchStats *stats) {
  if (!grid.x || !grid.y || !grid.z || !block.x || !block.y || !block.z ||
      uint64_t(block.x) * block.y * block.z > 1024) {
    error = "PTX emulator: " + kernel.name + ": invalid launch shape";
    return false;
  }
  std::vector<uint8_t> buffer(kernel.paramBytes);
  for (size_t i = 0; i < kernel.paramSizes.size(); ++i) {
    if (!params || !params[i]) {
      error = "PTX emulator: " + kernel.name + ": parameter " +
              std::to_string(i) + " of " +
              std::to_string(kernel.paramSizes.size()) + " is missing";
      return false;
    }
    std::memcpy(buffer.data() + kernel.paramOffsets[i], params[i],
                kernel.paramSizes[i]);
  }
  Runner r{kernel, grid, block, Dim3{}, buffer, memory, error, 0};
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        r.cta = Dim3{x, y, z};
        if (!r.runBlock())
          return false;
      }
  if (stats)
    stats->instructions += r.executed;
  return true;
}

} // namespace nibble::cuda::emu
