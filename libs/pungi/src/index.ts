// @rocky/pungi: composes made by pungi against koji (Rocky 8). This project runs pungi-koji
// (argv built and checked here, run locally or over SSH) and verifies what it wrote before any
// of it is staged; it does not reimplement pungi.
export { pungiKojiArgv, producerArgv, PUNGI_PHASES, COMPOSE_TYPE_FLAGS } from './argv';
export type { PungiKojiOptions, PungiPhase, ProducerRun, ComposeKind } from './argv';
export { runPungiKoji, runnerArgv, parseComposeDir, PungiRunError } from './run';
export type { RunPungiOptions, PungiRunResult, PungiRunner } from './run';
export { verifyPungiCompose, checkPungiStatus, readPungiStatus, failedDeliverables, describeDeliverable, PungiComposeError } from './verify';
export type { VerifiedCompose, VerifiedTree, VerifyOptions, FailedDeliverable } from './verify';
export { pungiTrees, treesOf, toRepoTrees } from './trees';
export type { PungiTree } from './trees';
export { checkProducer } from './preflight';
export { pungiConfigInputs, kojiTagListing } from './inputs';
export type { PungiConfigInputs } from './inputs';
