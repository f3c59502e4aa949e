/** A similarity provider for score tests: a sentence equals only itself (1, else 0.5); BERTScore is always 0.5. */
import type { SimilarityProvider } from '../../lib/srf/score.js';

export const equalityProvider: SimilarityProvider = {
  paperFaithful: true,
  async sentenceSimilarity(a, b) {
    return a === b ? 1 : 0.5;
  },
  async bertScore() {
    return 0.5;
  },
};
