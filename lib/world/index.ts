/** The synthetic world: seeded scenes, their rendering, question families, instruction data and the oracle. */
export * from './scene.js';
export { renderScenePng, renderSceneRgb, sceneSvg, type RenderOptions } from './render.js';
export { FAMILIES, FAMILY_NAMES, type Family, type FamilyName, type QuestionAnswer, type Reading, type UnanswerableCause } from './families.js';
export { makeReference, referenceText, resolve, type Reference } from './refer.js';
export { oracleAnswer, oracleReading, type OracleAnswer, type OracleRefusal, type UnanswerableReason } from './oracle.js';
export { buildWorldData, writeWorldData, worldImageFile, askAbout, FAMILY_WEIGHTS, type WorldData, type WorldImage, type WorldDataOptions } from './dataset.js';
export { WORLD_MODEL_FILES, WORLD_HELD_OUT_SEED, worldModelDir, worldModelPaths } from './model-files.js';
export { isRightAnswer, BOX_IOU_THRESHOLD } from './grade.js';
