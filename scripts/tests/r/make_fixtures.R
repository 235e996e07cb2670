#!/usr/bin/env Rscript
# Reference values for scripts/orchlab_py/stats.py, computed with base R.
# Regenerate (needs Debian's r-base-core; the tests themselves do not need R):
#   Rscript scripts/tests/r/make_fixtures.R > scripts/tests/inputs/r_fixtures.json
# Every case carries its inputs, so the tests read both from the JSON.

options(warn = 1)  # print warnings (e.g. "requested conf.level not achievable") as they come

# --- a minimal JSON writer (jsonlite is not part of r-base-core) -------------------------
json <- function(v) {
  if (is.null(v)) return("null")
  if (is.list(v)) {
    if (!is.null(names(v))) {
      items <- mapply(function(k, x) paste0('"', k, '": ', json(x)), names(v), v)
      return(paste0("{", paste(items, collapse = ", "), "}"))
    }
    return(paste0("[", paste(vapply(v, json, ""), collapse = ", "), "]"))
  }
  scalar <- function(x) {
    if (is.na(x)) return("null")
    if (is.character(x)) return(paste0('"', gsub('"', '\\\\"', x), '"'))
    if (is.logical(x)) return(if (x) "true" else "false")
    if (is.infinite(x)) return(if (x > 0) "1e999" else "-1e999")
    sprintf("%.17g", x)
  }
  if (length(v) == 1 && is.null(attr(v, "array"))) return(scalar(v))
  paste0("[", paste(vapply(as.list(v), scalar, ""), collapse = ", "), "]")
}
arr <- function(v) { attr(v, "array") <- TRUE; v }  # always a JSON array, even of length 1

# --- Mann-Whitney U ----------------------------------------------------------------------
# Exact without ties: R's own exact distribution.
exact_cases <- list(
  list(x = c(19, 22, 16, 29, 24), y = c(20, 11, 17, 12)),          # scipy's documented example
  list(x = c(1, 2, 3), y = c(4, 5, 6)),
  list(x = c(1, 2), y = c(3, 4)),
  list(x = c(1.1, 2.5, 3.7, 4.2, 5.9), y = c(6.3, 7.4, 8.8, 9.1, 10.5)),
  list(x = c(1000, 1010, 990, 1005, 995), y = c(700, 707, 693, 703.5, 696.5)),
  list(x = c(3.1, 4.7, 1.2, 9.9), y = c(2.2, 8.8, 7.7, 5.5, 6.6)),
  list(x = c(0.8, 1.9, 2.4, 3.3, 4.1, 5.6), y = c(1.4, 2.2, 2.9, 4.4, 6.0, 6.1, 7.3, 0.5))
)
set.seed(14)
exact_cases[[length(exact_cases) + 1]] <- list(x = round(rnorm(10, 100, 5), 3), y = round(rnorm(10, 104, 5), 3))
exact_cases[[length(exact_cases) + 1]] <- list(x = round(rnorm(7, 50, 3), 3), y = round(rnorm(9, 50, 3), 3))

mw_exact <- lapply(exact_cases, function(k) {
  t <- wilcox.test(k$x, k$y, exact = TRUE)
  list(x = arr(k$x), y = arr(k$y), w = unname(t$statistic), p = t$p.value)
})

# Exact conditional distribution with ties: R has no such test in base R (coin is not
# available), so count every split of the pooled midranks by brute force with combn.
brute_force_p <- function(x, y) {
  pooled <- c(x, y)
  r <- rank(pooled)                    # midranks for ties
  n1 <- length(x)
  splits <- combn(length(pooled), n1)
  sums <- colSums(matrix(r[splits], nrow = n1))
  obs <- sum(r[seq_len(n1)])
  eps <- 1e-9
  lower <- mean(sums <= obs + eps)
  upper <- mean(sums >= obs - eps)
  list(p = min(1, 2 * min(lower, upper)),
       p_min = min(1, 2 * min(mean(sums <= min(sums) + eps), mean(sums >= max(sums) - eps))),
       splits = ncol(splits), w = obs - n1 * (n1 + 1) / 2)
}
tie_cases <- list(
  list(x = c(1, 1, 1), y = c(2, 2, 2)),                 # the issue's example: old code said 0.047
  list(x = c(1, 2, 2), y = c(2, 3, 4)),
  list(x = c(0, 0, 1, 3, 0), y = c(2, 0, 4, 5, 1)),
  list(x = c(5, 5, 6, 7, 7, 7), y = c(7, 8, 8, 9)),
  list(x = c(10, 10, 10, 12), y = c(10, 11, 12, 12, 13)),
  list(x = c(1, 2, 2, 3, 3, 3, 4, 4), y = c(2, 3, 4, 4, 5, 5, 5, 6)),
  list(x = c(0, 0, 0, 0, 0), y = c(0, 0, 0, 0, 1)),
  list(x = c(3, 1, 4, 1, 5, 9, 2, 6, 5, 3), y = c(5, 8, 9, 7, 9, 3, 2, 3, 8, 4))  # C(20,10) = 184,756
)
mw_exact_ties <- lapply(tie_cases, function(k) {
  b <- brute_force_p(k$x, k$y)
  list(x = arr(k$x), y = arr(k$y), w = b$w, p = b$p, p_min = b$p_min, splits = b$splits)
})

# Normal approximation (tie-corrected variance), with and without continuity correction.
asym_cases <- c(tie_cases, exact_cases[c(1, 6)], list(
  list(x = c(rep(0, 6), 1, 2, 2, 3, 5, 8), y = c(0, 0, 1, 1, 2, 3, 3, 4, 6, 7, 9, 9, 12)),  # C(25,12) > 200k
  list(x = seq(1, 20), y = seq(15.5, 34.5))
))
mw_asymptotic <- list()
for (k in asym_cases) for (correct in c(TRUE, FALSE)) {
  t <- suppressWarnings(wilcox.test(k$x, k$y, exact = FALSE, correct = correct))
  mw_asymptotic[[length(mw_asymptotic) + 1]] <-
    list(x = arr(k$x), y = arr(k$y), correct = correct, w = unname(t$statistic), p = t$p.value)
}

# --- Hodges-Lehmann: wilcox.test(y, x, conf.int = TRUE) estimates y - x -----------------
hl_cases <- c(exact_cases, list(
  list(x = c(1, 2, 3), y = c(4, 5, 6.5)),   # 3 vs 3: 95 % not reachable, R warns and gives 90 %
  list(x = c(2.5, 3.5, 1.5, 4.5), y = c(5.25, 6.75, 4.75, 7.25, 3.75))
))
hl_exact <- lapply(hl_cases, function(k) {
  out <- list()
  for (level in c(0.95, 0.90)) {
    t <- withCallingHandlers(wilcox.test(k$y, k$x, conf.int = TRUE, conf.level = level, exact = TRUE),
                             warning = function(w) invokeRestart("muffleWarning"))
    ci <- t$conf.int
    out[[length(out) + 1]] <- list(level = level, estimate = unname(t$estimate),
                                   low = ci[1], high = ci[2], conf_level = attr(ci, "conf.level"))
  }
  list(x = arr(k$x), y = arr(k$y), results = out)
})
# With ties R solves the normal approximation numerically (uniroot, tol 1e-4) for both the
# estimate and the interval; stats.py keeps the median and the order statistics, so these
# agree only approximately. median_of_differences is the Hodges-Lehmann estimate proper.
tie_hl <- list(x = round(seq(1, 30) * 1.37 %% 11, 1), y = round(seq(1, 25) * 2.11 %% 13 + 2, 1))
th <- wilcox.test(tie_hl$y, tie_hl$x, conf.int = TRUE, correct = TRUE)
hl_ties <- list(list(x = arr(tie_hl$x), y = arr(tie_hl$y), level = 0.95, estimate = unname(th$estimate),
                     low = th$conf.int[1], high = th$conf.int[2],
                     median_of_differences = median(outer(tie_hl$y, tie_hl$x, "-"))))
# The ratio version: the same on logs, back-transformed.
ratio_cases <- list(exact_cases[[5]], exact_cases[[8]], list(x = c(2, 4, 8, 16, 32), y = c(3, 9, 27, 81, 243, 729)))
hl_ratio <- lapply(ratio_cases, function(k) {
  t <- wilcox.test(log(k$y), log(k$x), conf.int = TRUE, exact = TRUE)
  list(x = arr(k$x), y = arr(k$y), level = 0.95, estimate = exp(unname(t$estimate)),
       low = exp(t$conf.int[1]), high = exp(t$conf.int[2]))
})
# Large samples (R switches to the normal approximation at 50 values per side).
set.seed(7)
big <- list(x = round(rnorm(60, 10, 2), 4), y = round(rnorm(55, 11, 2), 4))
tb <- wilcox.test(big$y, big$x, conf.int = TRUE, exact = FALSE, correct = TRUE)
hl_asymptotic <- list(list(x = arr(big$x), y = arr(big$y), level = 0.95,
                           estimate = unname(tb$estimate), low = tb$conf.int[1], high = tb$conf.int[2],
                           median_of_differences = median(outer(big$y, big$x, "-")),
                           p = tb$p.value))

# --- Holm -----------------------------------------------------------------------------
holm_cases <- list(
  c(0.01, 0.04, 0.03, 0.2),
  c(0.001, 0.0079, 0.0079, 0.5, 1),
  c(0.05),
  c(0.3, 0.2, 0.1, 0.04, 0.011, 0.01),
  c(0.6, 0.6, 0.6)
)
holm <- lapply(holm_cases, function(p) list(p = arr(p), adjusted = arr(p.adjust(p, method = "holm"))))

# --- Wilson score interval of a proportion ---------------------------------------------
wilson_cases <- list(c(0, 10), c(1, 10), c(3, 10), c(10, 10), c(50, 100), c(999, 1000), c(0, 1), c(37, 41))
wilson <- list()
for (k in wilson_cases) for (level in c(0.95, 0.99)) {
  t <- prop.test(k[1], k[2], conf.level = level, correct = FALSE)
  z <- qnorm(1 - (1 - level) / 2); n <- k[2]; p <- k[1] / n
  centre <- (p + z^2 / (2 * n)) / (1 + z^2 / n)
  half <- z * sqrt(p * (1 - p) / n + z^2 / (4 * n^2)) / (1 + z^2 / n)
  wilson[[length(wilson) + 1]] <- list(successes = k[1], n = k[2], level = level,
                                       low = t$conf.int[1], high = t$conf.int[2],
                                       formula_low = centre - half, formula_high = centre + half)
}

# --- Quantiles (type 7, the bootstrap's) and the normal quantile -------------------------
qx <- c(3.2, 1.5, 9.9, 4.4, 4.4, 0.1, 7.7)
probs <- c(0, 0.025, 0.1, 0.25, 0.5, 0.9, 0.975, 1)
quantile7 <- list(list(x = arr(qx), probs = arr(probs), q = arr(unname(quantile(qx, probs, type = 7)))))
pz <- c(1e-10, 0.001, 0.025, 0.05, 0.3, 0.5, 0.8, 0.975, 0.995, 1 - 1e-9)
qnorm_ <- list(list(p = arr(pz), q = arr(qnorm(pz))))

cat(json(list(
  r_version = R.version.string,
  generated_by = "Rscript scripts/tests/r/make_fixtures.R",
  mann_whitney_exact = mw_exact,
  mann_whitney_exact_ties = mw_exact_ties,
  mann_whitney_asymptotic = mw_asymptotic,
  hodges_lehmann_exact = hl_exact,
  hodges_lehmann_ratio = hl_ratio,
  hodges_lehmann_asymptotic = hl_asymptotic,
  hodges_lehmann_ties = hl_ties,
  holm = holm,
  wilson = wilson,
  quantile_type7 = quantile7,
  qnorm = qnorm_
)), "\n")
