"""Class lists, colours and the CCP → 7-class mapping (documented in docs/models/segmentation.md)."""

import numpy as np

PERSON_CLASSES = ("background", "person")
FASHION_CLASSES = ("background", "skin", "hair", "t-shirt", "shoes", "pants", "dress")

# RGB colours for overlays and palette PNGs, indexed by class.
PERSON_PALETTE = np.array([[0, 0, 0], [255, 64, 64]], dtype=np.uint8)
FASHION_PALETTE = np.array(
    [
        [0, 0, 0],  # background
        [255, 200, 150],  # skin
        [120, 60, 20],  # hair
        [40, 120, 255],  # t-shirt
        [255, 220, 0],  # shoes
        [30, 180, 80],  # pants
        [220, 40, 160],  # dress
    ],
    dtype=np.uint8,
)

# CCP's 59 labels onto Fashionista's 7 classes. Fashionista labels jackets, coats, suits and
# pullovers as background in its clothes map, so CCP's outer layers go to background too, to keep
# the two data sets telling the network the same thing. Skirts and rompers go to dress.
CCP_TO_FASHION = {
    "skin": ["skin"],
    "hair": ["hair"],
    "t-shirt": ["t-shirt", "shirt", "blouse", "top", "bodysuit", "vest", "sweatshirt", "hoodie", "bra", "swimwear"],
    "shoes": ["boots", "clogs", "flats", "heels", "loafers", "pumps", "sandals", "shoes", "sneakers", "wedges"],
    "pants": ["jeans", "pants", "shorts", "leggings", "tights"],
    "dress": ["dress", "romper", "skirt"],
    # everything else (null, blazer, jacket, coat, suit, cape, cardigan, sweater, jumper, socks,
    # stockings, bags, belts, jewellery, hats, glasses, scarves, intimate, panties, ...) → background
}

# The cutout model's classes: the garment groups of the API contract ("all" is their union).
GARMENT_CLASSES = ("none", "top", "bottom", "dress", "shoes")

# CCP's fine labels onto the cutout groups of the API contract.
CCP_GARMENT_GROUPS = {
    "top": [
        "t-shirt",
        "shirt",
        "blouse",
        "top",
        "bodysuit",
        "vest",
        "sweatshirt",
        "hoodie",
        "sweater",
        "jumper",
        "cardigan",
        "blazer",
        "jacket",
        "coat",
        "suit",
        "cape",
    ],
    "bottom": ["pants", "jeans", "shorts", "skirt", "leggings", "tights"],
    "dress": ["dress", "romper"],
    "shoes": ["boots", "clogs", "flats", "heels", "loafers", "pumps", "sandals", "shoes", "sneakers", "wedges"],
}


def ccp_lookup(label_names: list[str], mapping: dict[str, list[str]], classes: tuple[str, ...]) -> np.ndarray:
    """A 256-entry lookup table from CCP label index to class index (0 for unmapped labels)."""
    lut = np.zeros(256, dtype=np.uint8)
    for target, sources in mapping.items():
        for name in sources:
            lut[label_names.index(name)] = classes.index(target)
    return lut
