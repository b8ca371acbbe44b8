# The algorithm container contract of vantage6 v4 / v6flow, in R, with no library but
# jsonlite (docs/cross-language.md). Copy this file next to your methods and end your script
# with run_algorithm(list(<method name> = <function>, ...)):
#
#   1. every environment value is base32 of its UTF-8 text, with "=" written as "!"
#      (env() decodes; a value that is not valid base32 is used as it is);
#   2. INPUT_FILE holds JSON {"method": ..., "args": [...], "kwargs": {...}}; the method is
#      called with args, then kwargs, as arguments;
#   3. the databases the task asked for are USER_REQUESTED_DATABASE_LABELS (comma-separated);
#      label L is the file <L>_DATABASE_URI of type <L>_DATABASE_TYPE (load_data());
#   4. the method's return value goes as JSON to OUTPUT_FILE, the only file written (R keeps
#      its session folder in TMPDIR=/tmp; scratch files shared by a job go to
#      TEMPORARY_FOLDER);
#   5. exit status 0 means completed; anything else means crashed, with "error > <reason>"
#      on standard error (the node puts the container's output in the run's log).

suppressPackageStartupMessages(library(jsonlite))

fail <- function(...) {
  cat("error > ", ..., "\n", sep = "", file = stderr())
  quit(save = "no", status = 1)
}

# --- 1. the environment ---------------------------------------------------------------------

decode_env_value <- function(value) {
  text <- chartr("!", "=", value)
  if (nchar(text) == 0 || nchar(text) %% 8 != 0 || !grepl("^[A-Z2-7]+=*$", text)) {
    return(value)
  }
  body <- sub("=+$", "", text)
  if (!((nchar(text) - nchar(body)) %in% c(0, 1, 3, 4, 6))) {
    return(value)
  }
  digits <- match(strsplit(body, "")[[1]], c(LETTERS, as.character(2:7))) - 1L
  bits <- unlist(lapply(digits, function(d) as.integer(intToBits(d))[5:1]))
  whole <- (length(bits) %/% 8L) * 8L
  if (whole == 0L) {
    return("")
  }
  bytes <- as.raw(colSums(matrix(bits[seq_len(whole)], nrow = 8L) * 2^(7:0)))
  if (any(bytes == as.raw(0L))) {
    return(value)
  }
  decoded <- rawToChar(bytes)
  Encoding(decoded) <- "UTF-8"
  if (!validUTF8(decoded)) value else decoded
}

env <- function(name, required = TRUE) {
  raw <- Sys.getenv(name, unset = NA)
  if (is.na(raw)) {
    if (required) fail("the environment variable ", name, " is missing")
    return(NA_character_)
  }
  decode_env_value(raw)
}

# The node admin's smallest count a node may return (algorithm_env V6FLOW_MIN_CELL_COUNT).
min_cell_count <- function() {
  raw <- trimws(env("V6FLOW_MIN_CELL_COUNT", required = FALSE))
  if (is.na(raw) || raw == "") {
    return(0)
  }
  if (!grepl("^[0-9]+$", raw)) {
    fail("V6FLOW_MIN_CELL_COUNT must be a non-negative integer (set by the node admin in ",
         "algorithm_env), got '", raw, "'")
  }
  as.numeric(raw)
}

# --- 3. the data ----------------------------------------------------------------------------

load_data <- function() {
  labels <- strsplit(env("USER_REQUESTED_DATABASE_LABELS"), ",", fixed = TRUE)[[1]]
  if (length(labels) == 0 || labels[1] == "") fail("the task requested no database")
  label <- toupper(labels[1])
  uri <- env(paste0(label, "_DATABASE_URI"))
  type <- tolower(env(paste0(label, "_DATABASE_TYPE"), required = FALSE))
  if (!is.na(type) && type != "csv") {
    fail("database '", labels[1], "' has type '", type, "'; this R algorithm reads csv only")
  }
  tryCatch(read.csv(uri, check.names = FALSE, stringsAsFactors = FALSE),
           error = function(e) fail("cannot read database '", labels[1], "': ",
                                    conditionMessage(e)))
}

# --- 2, 4 and 5: input, output, exit status -------------------------------------------------

run_algorithm <- function(methods) {
  input <- tryCatch(fromJSON(env("INPUT_FILE"), simplifyVector = FALSE),
                    error = function(e) fail("the input is not JSON: ", conditionMessage(e)))
  method <- input$method
  if (!is.character(method) || length(method) != 1) fail("the input names no method")
  handler <- methods[[method]]
  if (is.null(handler)) {
    fail("unknown method '", method, "' (this algorithm has: ",
         paste(names(methods), collapse = ", "), ")")
  }
  arguments <- c(if (is.null(input$args)) list() else input$args,
                 if (is.null(input$kwargs)) list() else input$kwargs)
  result <- tryCatch(do.call(handler, arguments),
                     error = function(e) fail(method, " failed: ", conditionMessage(e)))
  # digits = I(17): 17 significant digits, so every double reads back exactly.
  text <- toJSON(result, auto_unbox = TRUE, digits = I(17), na = "null", null = "null")
  tryCatch(writeLines(text, env("OUTPUT_FILE"), useBytes = TRUE),
           error = function(e) fail("cannot write OUTPUT_FILE: ", conditionMessage(e)))
  cat(method, "done\n")
  quit(save = "no", status = 0)
}
