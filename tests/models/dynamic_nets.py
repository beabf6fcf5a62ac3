"""Networks exported by torch with dynamic axes, for the dynamic-shape corpus
(dynamic_corpus.py): a conv net with global pooling over batch, height and width; GRU and
LSTM sequence models; a CRNN-style OCR net whose output length follows the input width; an
encoder-decoder with separate source and target lengths and a causal mask."""
from __future__ import annotations

import io

import onnx
import torch

torch.manual_seed(0)


class GapNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = torch.nn.Conv2d(8, 16, 3, stride=2)
        self.fc = torch.nn.Linear(16, 5)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.c1(x)), 2)
        return self.fc(torch.relu(self.c2(x)).mean(dim=(2, 3)))


class Seq(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.GRU(6, 12, batch_first=True)
        self.fc = torch.nn.Linear(12, 3)

    def forward(self, x):
        return self.fc(self.rnn(x)[0])


class Lstm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.LSTM(6, 12, batch_first=True)
        self.fc = torch.nn.Linear(12, 3)

    def forward(self, x):
        return self.fc(self.rnn(x)[0][:, -1])


class Crnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.rnn = torch.nn.GRU(8 * 4, 16, batch_first=True, bidirectional=True)
        self.fc = torch.nn.Linear(32, 10)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), (2, 2))
        b, c, h, w = x.shape
        x = x.permute(0, 3, 1, 2).reshape(b, w, c * h)
        return self.fc(self.rnn(x)[0]).log_softmax(-1)


class Attn(torch.nn.Module):
    def __init__(self, d=16, heads=2):
        super().__init__()
        self.q, self.k, self.v, self.o = (torch.nn.Linear(d, d) for _ in range(4))
        self.heads = heads

    def forward(self, x, mem, causal=False):
        b, n, d = x.shape
        m, h = mem.shape[1], self.heads
        q = self.q(x).view(b, n, h, d // h).transpose(1, 2)
        k = self.k(mem).view(b, m, h, d // h).transpose(1, 2)
        v = self.v(mem).view(b, m, h, d // h).transpose(1, 2)
        a = q @ k.transpose(-1, -2) / (d // h) ** 0.5
        if causal:
            a = a + torch.triu(torch.full((n, m), float("-inf")), diagonal=1)
        return self.o((a.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d))


class EncDec(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.pos = torch.nn.Embedding(50, 16), torch.nn.Embedding(64, 16)
        self.enc, self.dec, self.cross = Attn(), Attn(), Attn()
        self.ln, self.out = torch.nn.LayerNorm(16), torch.nn.Linear(16, 50)

    def forward(self, src, tgt):
        x = self.emb(src) + self.pos(torch.arange(src.shape[1]).unsqueeze(0))
        y = self.emb(tgt) + self.pos(torch.arange(tgt.shape[1]).unsqueeze(0))
        mem = self.ln(x + self.enc(x, x))
        y = self.ln(y + self.dec(y, y, causal=True))
        return self.out(self.ln(y + self.cross(y, mem)))


# name -> (net, example inputs, input names, dynamic axes)
NETS = {
    "gap": (GapNet, lambda: (torch.randn(2, 3, 32, 32),), ["x"],
            {"x": {0: "batch", 2: "height", 3: "width"}}),
    "gru": (Seq, lambda: (torch.randn(2, 5, 6),), ["x"], {"x": {0: "batch", 1: "seq"}}),
    "lstm": (Lstm, lambda: (torch.randn(2, 5, 6),), ["x"], {"x": {0: "batch", 1: "seq"}}),
    "crnn": (Crnn, lambda: (torch.randn(2, 1, 8, 40),), ["x"], {"x": {0: "batch", 3: "width"}}),
    "encdec": (EncDec, lambda: (torch.randint(0, 50, (2, 7)), torch.randint(0, 50, (2, 5))),
               ["src", "tgt"], {"src": {0: "batch", 1: "src_len"},
                                "tgt": {0: "batch", 1: "tgt_len"}}),
}


def export(name: str) -> onnx.ModelProto:
    torch.manual_seed(0)
    net, example, names, axes = NETS[name]
    buf = io.BytesIO()
    torch.onnx.export(net().eval(), example(), buf, input_names=names, output_names=["y"],
                      dynamic_axes=axes, opset_version=17, dynamo=False)
    return onnx.load_from_string(buf.getvalue())
