// @rocky/builders: dispatching iso-<arch> builds to native builders, for the arches where Nx
// cannot run (ppc64le, s390x): an SSH host or a Kubernetes Job on a node of that arch.
export type { RemoteBuildInput, SshBuilder, K8sBuilder, ProbeResult } from './types';
export { RemoteBuildError } from './types';
export { buildViaSsh, probeSsh, sshArgv, sshTarget } from './ssh';
export type { SshOptions, SshHost } from './ssh';
export { buildViaKubernetes, jobManifest, jobName, httpKubeClient, probeKubernetes, parseJob, KubeApiError, KUBE_ARCH, INPUTS_ANNOTATION, POD_SCRIPT } from './kube';
export type { KubeClient, JobStatus, K8sOptions, K8sResult } from './kube';
export { shQuote, shJoin, remoteSh } from './shell';
export { extractTar, checkExtracted } from './tar';
