"""Label assignment for training (SimOTA), kept outside the head and the loss."""
from .simota import Assignment, center_prior, pairwise_iou, simota_assign

__all__ = ["Assignment", "center_prior", "pairwise_iou", "simota_assign"]
