"""The few-shot tasks: sinusoid regression, digits, and readers of Omniglot and mini-ImageNet
(`episodes` samples N-way K-shot episodes from arrays of classes)."""
