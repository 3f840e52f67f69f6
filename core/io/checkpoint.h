/* checkpoint: load model weights from PyTorch .pth files (zip + pickle,
 * read by our own safe pickle subset: see pickle.h / pth.h) and .safetensors,
 * with no Python. The state dict is found in plain or nested checkpoints
 * (top level, or under "state_dict", "model", "teacher", "student") and key
 * prefixes "module.", "backbone.", "model." are stripped, so encoder keys come
 * out as in DINO's release ("blocks.0.attn.qkv.weight") and decoder keys as in
 * AlignSeg's ("clsQueries.weight", "decoder_ffn_layers.0.linear1.weight").
 * Every storage dtype (float32/16, bfloat16, float64) becomes float32;
 * non-float tensors are skipped. Files are hostile input: errors name the
 * file and what is wrong; nothing a pickle names is ever executed. */
#ifndef ALIGNSEG_CHECKPOINT_H
#define ALIGNSEG_CHECKPOINT_H

#include "error.h"
#include "tensor.h"

/* Detects the format by content (zip / safetensors / legacy torch). */
int as_checkpoint_load(const char *path, AsTensorMap *out, AsError *err);

#endif
