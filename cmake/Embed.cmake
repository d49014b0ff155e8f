# jb_embed(OUT_C SYMBOL FILE...): turn data files (built-in suites, chart
# fonts) into a C source with one table:
#   const struct embedded_file SYMBOL[] = {{"name", data, size}, ..., {0}};
# The data is regenerated whenever an input changes.
set(JB_EMBED_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/EmbedRun.cmake)
function(jb_embed out_c symbol)
  set(files ${ARGN})
  # A list would be split into separate arguments: pass it joined by '|'.
  string(REPLACE ";" "|" joined "${files}")
  add_custom_command(
    OUTPUT ${out_c}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out_c} -DSYMBOL=${symbol} "-DFILES=${joined}"
            -P ${JB_EMBED_SCRIPT}
    DEPENDS ${files} ${JB_EMBED_SCRIPT}
    COMMENT "Embedding ${symbol}"
    VERBATIM)
endfunction()
