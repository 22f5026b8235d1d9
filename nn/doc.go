// Package nn holds layers: parameters and buffers with PyTorch state_dict
// names, wrapped around the operations of package op, plus the official
// initialisation. A network is a Module made of Modules; its Vars list every
// tensor of its state in state_dict order with dotted names
// ("layer1.0.conv1.weight"), which is what checkpoints and optimisers use.
package nn
