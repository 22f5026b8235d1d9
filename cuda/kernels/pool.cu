// Placeholder: kernels for pool.cu are being written; see cuda/pool*.go.
