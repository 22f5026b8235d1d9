package report

// paperSize is a row of the SRM paper's Table 1 (parameters in millions,
// GFLOPs) with the exact counts that round to it (srm-facts).
type paperSize struct {
	model   string
	params  int     // exact trainable parameters
	paperM  float64 // the paper's millions
	paperGF float64 // the paper's GFLOPs (Caffe-layout multiply-adds)
}

var paperSizes = []paperSize{
	{"resnet50", 25557032, 25.56, 3.86},
	{"se-resnet50", 28088024, 28.09, 3.87},
	{"ge-resnet50", 31121704, 31.12, 3.87},
	{"srm-resnet50", 25617448, 25.62, 3.88},
	{"resnet101", 44549160, 44.55, 7.58},
	{"se-resnet101", 49326872, 49.33, 7.60},
	{"ge-resnet101", 53578024, 53.58, 7.60},
	{"srm-resnet101", 44679208, 44.68, 7.62},
}

// paperTop1 is the paper's ImageNet-1K validation top-1/top-5 (single 224
// crop).
var paperTop1 = []struct {
	model      string
	top1, top5 float64
}{
	{"resnet50", 75.89, 92.85}, {"se-resnet50", 76.80, 93.39}, {"ge-resnet50", 76.75, 93.41}, {"srm-resnet50", 77.13, 93.51},
	{"resnet101", 77.40, 93.59}, {"se-resnet101", 78.08, 93.95}, {"ge-resnet101", 77.36, 93.64}, {"srm-resnet101", 78.47, 94.20},
}
