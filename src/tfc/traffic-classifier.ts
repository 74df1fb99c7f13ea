/**
 * How well a simple observer tells classes of traffic apart from what the wire shows: a Gaussian naive
 * Bayes classifier over standardized window features (analysis/window-features.ts), scored by stratified
 * k-fold cross-validation, next to chance.
 *
 * Why naive Bayes: it is explainable (a class is a mean and a spread per feature, the same per-class table
 * the report prints), has nothing to tune, and is deterministic. And when the features carry no
 * information (every window alike, as under constant-rate TFC) its likelihoods tie and it falls back to
 * the class prior, i.e. to guessing the majority class: its accuracy then equals `chance`, the accuracy of
 * always guessing the majority class. An accuracy well above chance is what a TFC setting must prevent.
 *
 * Folds are stratified and blocked: the samples of each class, in time order, are cut into k contiguous
 * runs, one per fold, so neighbouring windows (which resemble each other) rarely sit on both sides of a
 * split. k is 5, or the size of the smallest class when that is smaller (at least 2).
 */

export const DEFAULT_FOLDS = 5;
/**
 * Added to every per-class variance, in units of the feature's variance over the training fold: a floor
 * that keeps a feature which barely varies (a packet count of 100 in most windows and 101 in a few) from
 * deciding alone.
 */
export const DEFAULT_VAR_SMOOTHING = 0.1;

export interface CrossValidationOptions {
  /** Most folds (default 5); fewer when a class has fewer samples. */
  maxFolds?: number;
  varSmoothing?: number;
}

export interface CrossValidation {
  method: 'gaussian-naive-bayes';
  /** Every feature standardized (z-score) with the training fold's mean and deviation. */
  standardized: true;
  varSmoothing: number;
  folds: number;
  samples: number;
  /** Fraction of samples whose class was predicted right when they were in the test fold. */
  accuracy: number;
  /** Accuracy of always guessing the majority class. */
  chance: number;
  chanceClass: string;
  /** Class names, sorted: the order of the confusion matrix's rows and columns. */
  classes: string[];
  samplesPerClass: Record<string, number>;
  /** matrix[i][j]: samples of classes[i] predicted as classes[j]. */
  confusion: number[][];
  /** Per class, the fraction of its samples predicted right. */
  recall: Record<string, number>;
}

/**
 * Cross-validates naive Bayes on `rows` (one feature vector per sample) labelled `classes`. Throws when a
 * class has fewer than two samples or there are fewer than two classes, saying so.
 */
export function crossValidate(
  rows: readonly (readonly number[])[],
  classes: readonly string[],
  options: CrossValidationOptions = {},
): CrossValidation {
  if (rows.length !== classes.length) throw new Error(`${rows.length} rows but ${classes.length} classes`);
  const varSmoothing = options.varSmoothing ?? DEFAULT_VAR_SMOOTHING;
  if (!(varSmoothing > 0)) throw new Error(`varSmoothing must be positive, got ${varSmoothing}`);
  const maxFolds = options.maxFolds ?? DEFAULT_FOLDS;
  const names = [...new Set(classes)].sort();
  if (names.length < 2)
    throw new Error(
      `a classifier needs at least two classes; the labels have ${names.length} (${names.join()})`,
    );
  const y = classes.map((c) => names.indexOf(c));
  const counts = names.map((_, c) => y.filter((v) => v === c).length);
  const smallest = Math.min(...counts);
  const folds = Math.min(maxFolds, smallest);
  if (folds < 2) {
    const c = names[counts.indexOf(smallest)]!;
    throw new Error(
      `class '${c}' has ${smallest} sample window; cross-validation needs at least 2 per class ` +
        '(lengthen its labelled windows or lower windowSeconds)',
    );
  }
  const fold = stratifiedBlockedFolds(y, names.length, folds);
  const confusion = names.map(() => names.map(() => 0));
  for (let f = 0; f < folds; f++) {
    const train: number[] = [];
    const test: number[] = [];
    for (let i = 0; i < rows.length; i++) (fold[i] === f ? test : train).push(i);
    const model = fitNaiveBayes(
      train.map((i) => rows[i]!),
      train.map((i) => y[i]!),
      names.length,
      varSmoothing,
    );
    for (const i of test) confusion[y[i]!]![model.predict(rows[i]!)]!++;
  }
  let correct = 0;
  for (let c = 0; c < names.length; c++) correct += confusion[c]![c]!;
  const majority = counts.indexOf(Math.max(...counts));
  return {
    method: 'gaussian-naive-bayes',
    standardized: true,
    varSmoothing,
    folds,
    samples: rows.length,
    accuracy: correct / rows.length,
    chance: counts[majority]! / rows.length,
    chanceClass: names[majority]!,
    classes: names,
    samplesPerClass: Object.fromEntries(names.map((n, c) => [n, counts[c]!])),
    confusion,
    recall: Object.fromEntries(names.map((n, c) => [n, confusion[c]![c]! / counts[c]!])),
  };
}

/**
 * Fold of each sample: the samples of each class, in order, cut into `k` contiguous runs of near-equal
 * size (run f gets ranks [f·n/k, (f+1)·n/k)).
 */
export function stratifiedBlockedFolds(y: readonly number[], classCount: number, k: number): number[] {
  const counts = new Array<number>(classCount).fill(0);
  for (const c of y) counts[c]!++;
  const rank = new Array<number>(classCount).fill(0);
  return y.map((c) => Math.floor((rank[c]!++ * k) / counts[c]!));
}

export interface NaiveBayesModel {
  /** Index of the most probable class (ties: the larger class, then the lower index). */
  predict(x: readonly number[]): number;
}

/** Standardizes with the training rows' statistics, then fits one Gaussian per class and feature. */
export function fitNaiveBayes(
  rows: readonly (readonly number[])[],
  y: readonly number[],
  classCount: number,
  varSmoothing = DEFAULT_VAR_SMOOTHING,
): NaiveBayesModel {
  const d = rows[0]?.length ?? 0;
  const center = new Float64Array(d);
  const scale = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    let mean = 0;
    for (const r of rows) mean += r[j]!;
    mean /= rows.length;
    let v = 0;
    for (const r of rows) v += (r[j]! - mean) ** 2;
    center[j] = mean;
    // A feature constant over the training fold says nothing: it standardizes to 0 everywhere.
    scale[j] = v > 0 ? 1 / Math.sqrt(v / rows.length) : 0;
  }
  const z = (x: readonly number[], j: number) => (x[j]! - center[j]!) * scale[j]!;
  const count = new Float64Array(classCount);
  const mean = Array.from({ length: classCount }, () => new Float64Array(d));
  const variance = Array.from({ length: classCount }, () => new Float64Array(d));
  rows.forEach((r, i) => {
    const c = y[i]!;
    count[c]!++;
    for (let j = 0; j < d; j++) mean[c]![j]! += z(r, j);
  });
  for (let c = 0; c < classCount; c++) for (let j = 0; j < d; j++) mean[c]![j]! /= count[c]! || 1;
  rows.forEach((r, i) => {
    const c = y[i]!;
    for (let j = 0; j < d; j++) variance[c]![j]! += (z(r, j) - mean[c]![j]!) ** 2;
  });
  // Standardized features have variance 1 over the fold, so the smoothing is a fraction of it.
  for (let c = 0; c < classCount; c++)
    for (let j = 0; j < d; j++) variance[c]![j] = variance[c]![j]! / (count[c]! || 1) + varSmoothing;
  const logPrior = Array.from(count, (n) => (n > 0 ? Math.log(n / rows.length) : Number.NEGATIVE_INFINITY));
  return {
    predict(x) {
      let best = -1;
      let bestScore = Number.NEGATIVE_INFINITY;
      for (let c = 0; c < classCount; c++) {
        if (count[c] === 0) continue;
        let score = logPrior[c]!;
        for (let j = 0; j < d; j++) {
          const v = variance[c]![j]!;
          const diff = z(x, j) - mean[c]![j]!;
          score -= 0.5 * Math.log(2 * Math.PI * v) + (diff * diff) / (2 * v);
        }
        if (score > bestScore || (score === bestScore && count[c]! > count[best]!)) {
          best = c;
          bestScore = score;
        }
      }
      return best;
    },
  };
}

/** Mean and (population) standard deviation of every feature per class, in the features' own units. */
export function summarizeByClass(
  rows: readonly (readonly number[])[],
  classes: readonly string[],
  featureNames: readonly string[],
): Record<string, Record<string, { mean: number; stddev: number }>> {
  const out: Record<string, Record<string, { mean: number; stddev: number }>> = {};
  for (const name of [...new Set(classes)].sort()) {
    const members = rows.filter((_, i) => classes[i] === name);
    out[name] = Object.fromEntries(
      featureNames.map((f, j) => {
        const mean = members.reduce((s, r) => s + r[j]!, 0) / members.length;
        const v = members.reduce((s, r) => s + (r[j]! - mean) ** 2, 0) / members.length;
        return [f, { mean, stddev: Math.sqrt(v) }];
      }),
    );
  }
  return out;
}
