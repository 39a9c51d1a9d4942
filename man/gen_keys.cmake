# gen_keys.cmake - cmake -P script: TEMPLATE with its %%KEYS%% line replaced by the output of
# `SLUICECTL config params --man` (the params table as roff), written to OUTPUT.
execute_process(COMMAND ${SLUICECTL} config params --man
                OUTPUT_VARIABLE keys ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "sluicectl config params --man failed (${rc}): ${err}")
endif()
file(READ ${TEMPLATE} text)
string(REPLACE "%%KEYS%%\n" "${keys}" text "${text}")
file(WRITE ${OUTPUT}.tmp "${text}")
file(RENAME ${OUTPUT}.tmp ${OUTPUT})
