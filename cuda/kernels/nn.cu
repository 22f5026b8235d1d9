// Placeholder: kernels for nn.cu are being written; see cuda/nn*.go.
