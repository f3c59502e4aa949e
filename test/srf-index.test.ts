import t from 'tap';
import * as emit from '../lib/emit/index.js';
import * as srf from '../lib/srf/index.js';

t.test('public entry points export the pieces', async (t) => {
  for (const name of [
    'parseQaReply', 'cleanReply', 'detectDataType', 'stripFormatSuffix', 'parseBox', 'normalizeForExactMatch',
    'boxIoU', 'exactMatch', 'cosine', 'bertScoreF1', 'geometricMean', 'lexicalSimilarity',
    'scoreTriplet', 'lexicalSimilarityProvider', 'embeddingSimilarityProvider',
    'selectTopPerType', 'PerTypeSelector', 'matchTypeMix', 'typeMixFromLlavaData',
    'splitConversations', 'buildMultiTaskData', 'llavaPromptParts', 'QA_REPLY_GRAMMAR', 'DEFAULT_DECODING',
  ]) {
    t.ok(name in srf, `srf.${name}`);
  }
  for (const name of ['EMITTERS', 'toLlavaRecord', 'validateLlavaDataset', 'toShareGptRecord', 'toOpenAiRecord', 'RecordFileWriter']) {
    t.ok(name in emit, `emit.${name}`);
  }
});
