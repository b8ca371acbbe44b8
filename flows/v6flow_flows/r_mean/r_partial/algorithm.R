# The R partial of the federated mean: the sum and count of one numeric column of the node's
# data, computed by R. contract.R speaks the container contract (env, input, data, output,
# exit status); this file holds only the method.
#
# Task input: {"method": "sum_count", "kwargs": {"column": "age"}}
# Result:     {"sum": 5230.0, "count": 120, "missing": 3, "language": "R", "version": "4.2.2"}
# A node whose admin set V6FLOW_MIN_CELL_COUNT=k (algorithm_env) returns sum and count null
# when 0 < count < k, with the reason in "suppressed".

source("/opt/algorithm/contract.R")

sum_count <- function(column) {
  if (!is.character(column) || length(column) != 1) stop("'column' must be one column name")
  data <- load_data()
  values <- data[[column]]
  if (is.null(values)) {
    stop("column '", column, "' is not in the data (columns: ",
         paste(names(data), collapse = ", "), ")")
  }
  if (!is.numeric(values)) stop("column '", column, "' is not numeric")
  count <- sum(!is.na(values))
  result <- list(sum = sum(as.numeric(values), na.rm = TRUE), count = count,
                 missing = sum(is.na(values)), language = "R",
                 version = paste(R.version$major, R.version$minor, sep = "."))
  threshold <- min_cell_count()
  if (count > 0 && count < threshold) {
    result$sum <- NA
    result$count <- NA
    result$suppressed <- sprintf("fewer than %d values (V6FLOW_MIN_CELL_COUNT)", threshold)
  }
  result
}

run_algorithm(list(sum_count = sum_count))
