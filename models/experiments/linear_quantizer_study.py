"""Study behind the FSQ levels: the PCA-initialised linear path alone (no
transformer), Kodak tiles, PSNR and per-(position, dim) empirical entropy as
the rate, for several level counts and scales.  Output: linear_quantizer_study.txt
  /usr/bin/python3 models/experiments/linear_quantizer_study.py"""
import sys; sys.path.insert(0,'models')
import numpy as np, torch
from data import *
from tok1d_model import *
torch.set_num_threads(1)
tr,va=load_dataset(['/work/shared/data/train'], cache='data/cache/train512.npz')
crops=CropSampler(tr,128,999).batch(8000)
Vk=np.concatenate([tile_image(im,128)[0] for im in kodak_images('/work/shared/data/kodak')])
V=torch.tensor(Vk).float()/255
m=Tok1d()
def lin_eval(m,k):
  x=V-0.5; b=len(x)
  pooled=avg_pool_hwc(x,4).reshape(b,-1)
  z=m.shortcut_enc(pooled).reshape(b,128,6)
  q=m.fsq(z); q[:,k:]=0
  c=m.shortcut_dec(q.reshape(b,-1)).reshape(b,32,32,3)
  y=(0.5+upsample_bilinear_hwc(c,128)).clamp(0,1)
  return 10*np.log10(1/((y-V)**2).mean().item())
def ent(m,k):
  x=V-0.5; b=len(x)
  z=m.shortcut_enc(avg_pool_hwc(x,4).reshape(b,-1)).reshape(b,128,6)
  q=torch.round(m.fsq.bound(z)).long()[:, :k]  # [b,k,6]
  bits=0
  for t in range(k):
    for d in range(6):
      v=q[:,t,d]; _,c=torch.unique(v,return_counts=True); p=c.float()/c.sum()
      bits+=-(p*torch.log2(p)).sum().item()
  return bits/ (128*128)  # bpp
with torch.no_grad():
 for lv in ([7]*6,[9]*6,[11]*6,[15]*6):
  m=Tok1d({'fsq_levels':lv})
  for s in (2.0,3.0,4.0):
   pca_init(m,crops,scale_sd=s)
   print(lv[0],s,[(round(lin_eval(m,k),2),round(ent(m,k),4)) for k in (8,32,128)])
