"""The f-AnoGAN model: networks (Generator, Critic, Encoder), the latent prior, losses, critic-input
augmentation, and the two Keras trainers with custom ``train_step`` (WGANGP, EncoderTrainer).
"""
