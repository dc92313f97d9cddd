//===- ParallelizeKernels.cpp - Kernel rows over the runtime's pool -------===//
//
// nibble-parallelize-kernel-calls: a call of a generated matmul kernel over
// all its output rows becomes a call of the runtime's nibble_parallel_for
// with a task that runs the kernel on one row range. See Passes.td.
//
//===----------------------------------------------------------------------===//

#include "nibble/Dialect/Nibble/Transforms/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/SymbolTable.h"

#include <map>
#include <numeric>

namespace mlir::nibble {
#define GEN_PASS_DEF_NIBBLEPARALLELIZEKERNELCALLS
#include "nibble/Dialect/Nibble/Transforms/Passes.h.inc"
} // namespace mlir::nibble

using namespace mlir;

namespace {

std::optional<int64_t> constantInt(Value v) {
  auto c = v.getDefiningOp<LLVM::ConstantOp>();
  if (!c)
    return std::nullopt;
  auto i = dyn_cast<IntegerAttr>(c.getValue());
  return i ? std::optional<int64_t>(i.getInt()) : std::nullopt;
}

/// The code's link to the runtime, resolved by the runtime itself rather
/// than by the dynamic linker (a host may load libnibble_runtime.so with
/// RTLD_LOCAL, as Python's ctypes does):
///
///   llvm.mlir.global external @nibble_parallel_for_hook : !llvm.ptr (null)
///   llvm.func internal @__nibble_parallel_for(task, ctx, rows, align):
///     the hook when the runtime has set it, else task(ctx, 0, rows).
///
/// The runtime stores the address of its nibble_parallel_for into the hook
/// after loading the code.
LLVM::LLVMFuncOp dispatcher(ModuleOp module, SymbolTable &symbols) {
  if (auto f = symbols.lookup<LLVM::LLVMFuncOp>("__nibble_parallel_for"))
    return f;
  MLIRContext *ctx = module.getContext();
  Location loc = module.getLoc();
  auto ptr = LLVM::LLVMPointerType::get(ctx);
  auto i64 = IntegerType::get(ctx, 64);
  auto voidTy = LLVM::LLVMVoidType::get(ctx);
  OpBuilder b(ctx);
  b.setInsertionPointToEnd(module.getBody());
  auto hook = LLVM::GlobalOp::create(b, loc, ptr, /*isConstant=*/false,
                                     LLVM::Linkage::External,
                                     "nibble_parallel_for_hook", Attribute());
  {
    Block *init = b.createBlock(&hook.getInitializerRegion());
    b.setInsertionPointToStart(init);
    LLVM::ReturnOp::create(b, loc,
                           ValueRange{LLVM::ZeroOp::create(b, loc, ptr)});
  }
  symbols.insert(hook);
  b.setInsertionPointToEnd(module.getBody());
  auto taskTy = LLVM::LLVMFunctionType::get(voidTy, {ptr, i64, i64});
  auto runTy = LLVM::LLVMFunctionType::get(voidTy, {ptr, ptr, i64, i64});
  auto f = LLVM::LLVMFuncOp::create(b, loc, "__nibble_parallel_for", runTy,
                                    LLVM::Linkage::Internal);
  symbols.insert(f);
  Block *entry = f.addEntryBlock(b);
  Block *serial = b.createBlock(&f.getBody());
  Block *pooled = b.createBlock(&f.getBody());
  Value task = entry->getArgument(0), record = entry->getArgument(1),
        rows = entry->getArgument(2), align = entry->getArgument(3);
  b.setInsertionPointToStart(entry);
  Value run = LLVM::LoadOp::create(
      b, loc, ptr, LLVM::AddressOfOp::create(b, loc, hook));
  Value unset = LLVM::ICmpOp::create(b, loc, LLVM::ICmpPredicate::eq, run,
                                     LLVM::ZeroOp::create(b, loc, ptr));
  LLVM::CondBrOp::create(b, loc, unset, serial, pooled);
  b.setInsertionPointToStart(serial);
  Value zero = LLVM::ConstantOp::create(b, loc, i64, b.getI64IntegerAttr(0));
  LLVM::CallOp::create(b, loc, taskTy, ValueRange{task, record, zero, rows});
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  b.setInsertionPointToStart(pooled);
  LLVM::CallOp::create(b, loc, runTy,
                       ValueRange{run, task, record, rows, align});
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return f;
}

struct ParallelizeKernelCallsPass
    : public mlir::nibble::impl::NibbleParallelizeKernelCallsBase<
          ParallelizeKernelCallsPass> {
  using NibbleParallelizeKernelCallsBase::NibbleParallelizeKernelCallsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    SymbolTable symbols(module);
    auto ptr = LLVM::LLVMPointerType::get(ctx);
    auto i64 = IntegerType::get(ctx, 64);
    SmallVector<LLVM::CallOp> calls;
    module.walk([&](LLVM::CallOp call) {
      auto caller = call->getParentOfType<LLVM::LLVMFuncOp>();
      if (caller->hasAttr("nibble.kernel") || !call.getCallee())
        return;
      auto callee = symbols.lookup<LLVM::LLVMFuncOp>(*call.getCallee());
      if (callee && callee->hasAttr("nibble.row_range"))
        calls.push_back(call);
    });
    if (calls.empty())
      return;
    OpBuilder b(ctx);
    b.setInsertionPointToEnd(module.getBody());
    LLVM::LLVMFuncOp parallelFor = dispatcher(module, symbols);
    std::map<std::string, LLVM::LLVMFuncOp> tasks;
    for (LLVM::CallOp call : calls) {
      auto callee = symbols.lookup<LLVM::LLVMFuncOp>(*call.getCallee());
      int64_t at =
          callee->getAttrOfType<IntegerAttr>("nibble.row_range").getInt();
      auto workAttr = callee->getAttrOfType<IntegerAttr>("nibble.row_work");
      if (at < 0 || at + 1 >= int64_t(call.getNumOperands()))
        continue;
      std::optional<int64_t> n0 = constantInt(call.getOperand(unsigned(at))),
                             n1 =
                                 constantInt(call.getOperand(unsigned(at + 1)));
      // Only whole calls [0, N): anything else was split already.
      if (!n0 || !n1 || *n0 != 0 || *n1 <= 0 || call.getNumResults() != 0)
        continue;
      const int64_t work = workAttr ? workAttr.getInt() : 1;
      // A kernel that needs whole blocks of rows per range (one that sums
      // its outputs per group) says so in nibble.row_align.
      int64_t rowAlign = align;
      if (auto a = callee->getAttrOfType<IntegerAttr>("nibble.row_align"))
        rowAlign = std::lcm(std::max<int64_t>(align, 1), a.getInt());
      if (*n1 * work < minWork || *n1 < 2 * rowAlign)
        continue;
      // The record of every operand but the row range.
      SmallVector<Type> fields;
      SmallVector<Value> values;
      for (auto [i, v] : llvm::enumerate(call.getOperands()))
        if (int64_t(i) != at && int64_t(i) != at + 1) {
          fields.push_back(v.getType());
          values.push_back(v);
        }
      auto record = LLVM::LLVMStructType::getLiteral(ctx, fields);
      LLVM::LLVMFuncOp &task = tasks[callee.getName().str()];
      if (!task) {
        b.setInsertionPointToEnd(module.getBody());
        task = LLVM::LLVMFuncOp::create(
            b, callee.getLoc(), (callee.getName() + "_rows").str(),
            LLVM::LLVMFunctionType::get(LLVM::LLVMVoidType::get(ctx),
                                        {ptr, i64, i64}));
        task->setAttr("nibble.kernel_task", b.getUnitAttr());
        Block *entry = task.addEntryBlock(b);
        b.setInsertionPointToStart(entry);
        Location l = callee.getLoc();
        SmallVector<Value> args;
        unsigned field = 0;
        for (int64_t i = 0; i < int64_t(call.getNumOperands()); ++i) {
          if (i == at) {
            args.append({entry->getArgument(1), entry->getArgument(2)});
            ++i;
            continue;
          }
          Value addr =
              LLVM::GEPOp::create(b, l, ptr, record, entry->getArgument(0),
                                  ArrayRef<LLVM::GEPArg>{0, int32_t(field)});
          args.push_back(
              LLVM::LoadOp::create(b, l, fields[field], addr).getResult());
          ++field;
        }
        LLVM::CallOp::create(b, l, callee, args);
        LLVM::ReturnOp::create(b, l, ValueRange{});
      }
      // The record lives in the caller's frame: one per call site,
      // allocated in the entry block (calls sit inside loops).
      auto caller = call->getParentOfType<LLVM::LLVMFuncOp>();
      Location l = call.getLoc();
      b.setInsertionPointToStart(&caller.getBody().front());
      Value one = LLVM::ConstantOp::create(b, l, i64, b.getI64IntegerAttr(1));
      Value rec = LLVM::AllocaOp::create(b, l, ptr, record, one, 16);
      b.setInsertionPoint(call);
      for (auto [i, v] : llvm::enumerate(values)) {
        Value addr = LLVM::GEPOp::create(b, l, ptr, record, rec,
                                         ArrayRef<LLVM::GEPArg>{0, int32_t(i)});
        LLVM::StoreOp::create(b, l, v, addr);
      }
      Value fn = LLVM::AddressOfOp::create(b, l, task);
      LLVM::CallOp::create(
          b, l, parallelFor,
          ValueRange{
              fn, rec, call.getOperand(unsigned(at + 1)),
              LLVM::ConstantOp::create(b, l, i64,
                                       b.getI64IntegerAttr(rowAlign))});
      call.erase();
    }
  }
};

} // namespace
