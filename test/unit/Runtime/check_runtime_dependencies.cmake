# Checks that the runtime stands apart from the compiler:
#   - LIBRARY (libnibble_runtime.so) and TOOL (quant-run) have no NEEDED
#     entry naming MLIR or LLVM (libc, libm, libstdc++, libgcc_s, libcrypto,
#     libsentencepiece, libpcre2 ... are fine);
#   - LIBRARY exports (defines in its dynamic symbol table) only nibble_*
#     symbols, and the whole C API of nibble_runtime.h.
# So that the check cannot pass vacuously, the same NEEDED parser must find
# LLVM in MLIR_LIBRARY (libMLIR.so) when that exists.
#
#   cmake -DLIBRARY=... -DTOOL=... [-DMLIR_LIBRARY=...] -P this-file

cmake_minimum_required(VERSION 3.20)

find_program(READELF NAMES readelf llvm-readelf REQUIRED)

function(needed_entries file out)
  execute_process(COMMAND ${READELF} -d --wide ${file}
                  OUTPUT_VARIABLE text RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "readelf -d ${file} failed: ${err}")
  endif()
  string(REGEX MATCHALL "\\(NEEDED\\)[^\n]*\\[[^]\n]*\\]" lines "${text}")
  set(names)
  foreach(line IN LISTS lines)
    string(REGEX REPLACE ".*\\[([^]]*)\\].*" "\\1" name "${line}")
    list(APPEND names ${name})
  endforeach()
  set(${out} ${names} PARENT_SCOPE)
endfunction()

function(forbidden names out)
  set(bad)
  foreach(name IN LISTS names)
    if(name MATCHES "MLIR|LLVM|[Ll]lvm|clang")
      list(APPEND bad ${name})
    endif()
  endforeach()
  set(${out} ${bad} PARENT_SCOPE)
endfunction()

# The parser sees what it must refuse.
if(MLIR_LIBRARY AND EXISTS "${MLIR_LIBRARY}")
  needed_entries(${MLIR_LIBRARY} mlirNeeded)
  forbidden("${mlirNeeded}" mlirBad)
  if(NOT mlirBad)
    message(FATAL_ERROR "self-check: found no LLVM dependency in "
            "${MLIR_LIBRARY} (NEEDED: ${mlirNeeded}); the parser is broken")
  endif()
endif()

foreach(file IN ITEMS ${LIBRARY} ${TOOL})
  needed_entries(${file} needed)
  if(NOT needed)
    message(FATAL_ERROR "${file}: no NEEDED entries found (readelf output "
            "not understood?)")
  endif()
  forbidden("${needed}" bad)
  if(bad)
    message(FATAL_ERROR "${file} depends on ${bad} (NEEDED: ${needed}); the "
            "runtime must not load MLIR or LLVM")
  endif()
  message(STATUS "${file}: NEEDED ${needed}")
endforeach()

# Exports: defined symbols of the dynamic symbol table.
execute_process(COMMAND ${READELF} --dyn-syms --wide ${LIBRARY}
                OUTPUT_VARIABLE syms RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "readelf --dyn-syms ${LIBRARY} failed")
endif()
string(REPLACE "\n" ";" lines "${syms}")
set(exported)
foreach(line IN LISTS lines)
  # Num: Value Size Type Bind Vis Ndx Name; Ndx UND = imported.
  if(line MATCHES "^ *[0-9]+: +[0-9a-f]+ +[0-9]+ +(FUNC|OBJECT|TLS|IFUNC) +(GLOBAL|WEAK|GNU_UNIQUE) +[A-Z]+ +([0-9]+|ABS) +([^ @]+)")
    list(APPEND exported ${CMAKE_MATCH_4})
  endif()
endforeach()
set(stray)
foreach(sym IN LISTS exported)
  if(NOT sym MATCHES "^nibble_")
    list(APPEND stray ${sym})
  endif()
endforeach()
if(stray)
  message(FATAL_ERROR "${LIBRARY} exports symbols outside the C API: ${stray}")
endif()
foreach(sym IN ITEMS nibble_last_error nibble_bundle_open nibble_bundle_close
        nibble_bundle_manifest nibble_bundle_vocab nibble_bundle_context
        nibble_bundle_bos nibble_bundle_eos nibble_tokenize nibble_detokenize
        nibble_free_string nibble_session_create nibble_session_free
        nibble_session_reset nibble_session_position nibble_session_prefill
        nibble_session_decode nibble_session_logits nibble_sample)
  if(NOT sym IN_LIST exported)
    message(FATAL_ERROR "${LIBRARY} does not export ${sym} (exports: ${exported})")
  endif()
endforeach()
list(LENGTH exported count)
message(STATUS "${LIBRARY}: exports ${count} nibble_* symbols")
