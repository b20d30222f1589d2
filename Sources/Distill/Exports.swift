// The diffusion and distillation layer; it re-exports the numeric engine so one
// `import Distill` gives the whole public API.
@_exported import DistillCore
