// Placeholder: kernels for conv.cu are being written; see cuda/conv*.go.
