/**
 * Class names and prompt templates of the datasets moeclip knows (the first template is the training one).
 *
 * Sources (facts, not code): CLIP's published prompt lists (as used by ZSCL / MoE-Adapters4CL MTIL), the
 * dataset authors' label lists (torchvision's names where MTIL uses them), and the moeclip fact sheets
 * (`moe-adapters4cl.md` §7). `{}` marks where the class name goes.
 *
 * StanfordCars (196) and SUN397 (397) names are not listed here: their loaders take them from the data
 * (ImageFolder folder names, "_" → space). See ./registry.ts.
 */

/** "_" → space, as MTIL's `process_labels` does for CIFAR-100 / Food / SUN397. */
export function underscoresToSpaces(name: string): string {
  return name.replace(/_/g, ' ');
}

// ---------------------------------------------------------------- class names

/** torchvision MNIST class names (MTIL uses these with the MNIST template). */
export const MNIST_CLASSES = [
  '0 - zero', '1 - one', '2 - two', '3 - three', '4 - four', '5 - five', '6 - six', '7 - seven', '8 - eight', '9 - nine',
];

/** Fashion-MNIST labels 0–9 (Zalando's README). */
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

/** CIFAR-10 labels 0–9 (batches.meta.txt order). */
export const CIFAR10_CLASSES = [
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
];

/** CIFAR-100 fine labels 0–99 as in fine_label_names.txt (with underscores; display names replace them). */
export const CIFAR100_FINE_RAW = [
  'apple', 'aquarium_fish', 'baby', 'bear', 'beaver', 'bed', 'bee', 'beetle', 'bicycle', 'bottle',
  'bowl', 'boy', 'bridge', 'bus', 'butterfly', 'camel', 'can', 'castle', 'caterpillar', 'cattle',
  'chair', 'chimpanzee', 'clock', 'cloud', 'cockroach', 'couch', 'crab', 'crocodile', 'cup', 'dinosaur',
  'dolphin', 'elephant', 'flatfish', 'forest', 'fox', 'girl', 'hamster', 'house', 'kangaroo', 'keyboard',
  'lamp', 'lawn_mower', 'leopard', 'lion', 'lizard', 'lobster', 'man', 'maple_tree', 'motorcycle', 'mountain',
  'mouse', 'mushroom', 'oak_tree', 'orange', 'orchid', 'otter', 'palm_tree', 'pear', 'pickup_truck', 'pine_tree',
  'plain', 'plate', 'poppy', 'porcupine', 'possum', 'rabbit', 'raccoon', 'ray', 'road', 'rocket',
  'rose', 'sea', 'seal', 'shark', 'shrew', 'skunk', 'skyscraper', 'snail', 'snake', 'spider',
  'squirrel', 'streetcar', 'sunflower', 'sweet_pepper', 'table', 'tank', 'telephone', 'television', 'tiger', 'tractor',
  'train', 'trout', 'tulip', 'turtle', 'wardrobe', 'whale', 'willow_tree', 'wolf', 'woman', 'worm',
];
export const CIFAR100_CLASSES = CIFAR100_FINE_RAW.map(underscoresToSpaces);

/** CIFAR-100 coarse labels 0–19 (coarse_label_names.txt). */
export const CIFAR100_COARSE_RAW = [
  'aquatic_mammals', 'fish', 'flowers', 'food_containers', 'fruit_and_vegetables',
  'household_electrical_devices', 'household_furniture', 'insects', 'large_carnivores', 'large_man-made_outdoor_things',
  'large_natural_outdoor_scenes', 'large_omnivores_and_herbivores', 'medium_mammals', 'non-insect_invertebrates', 'people',
  'reptiles', 'small_mammals', 'trees', 'vehicles_1', 'vehicles_2',
];

/** EuroSAT, MTIL's custom names (fact sheet §7). */
export const EUROSAT_CLASSES = [
  'annual crop land', 'forest', 'brushland or shrubland', 'highway or road',
  'industrial buildings or commercial buildings', 'pasture land', 'permanent crop land',
  'residential buildings or homes or apartments', 'river', 'lake or sea',
];

/** DTD's 47 texture categories (alphabetical, as torchvision). */
export const DTD_CLASSES = [
  'banded', 'blotchy', 'braided', 'bubbly', 'bumpy', 'chequered', 'cobwebbed', 'cracked', 'crosshatched', 'crystalline',
  'dotted', 'fibrous', 'flecked', 'freckled', 'frilly', 'gauzy', 'grid', 'grooved', 'honeycombed', 'interlaced',
  'knitted', 'lacelike', 'lined', 'marbled', 'matted', 'meshed', 'paisley', 'perforated', 'pitted', 'pleated',
  'polka-dotted', 'porous', 'potholed', 'scaly', 'smeared', 'spiralled', 'sprinkled', 'stained', 'stratified', 'striped',
  'studded', 'swirly', 'veined', 'waffled', 'woven', 'wrinkled', 'zigzagged',
];

/** Food-101 categories in meta/classes.txt order ("_" kept; display names replace it). */
export const FOOD101_RAW = [
  'apple_pie', 'baby_back_ribs', 'baklava', 'beef_carpaccio', 'beef_tartare', 'beet_salad', 'beignets', 'bibimbap',
  'bread_pudding', 'breakfast_burrito', 'bruschetta', 'caesar_salad', 'cannoli', 'caprese_salad', 'carrot_cake',
  'ceviche', 'cheese_plate', 'cheesecake', 'chicken_curry', 'chicken_quesadilla', 'chicken_wings', 'chocolate_cake',
  'chocolate_mousse', 'churros', 'clam_chowder', 'club_sandwich', 'crab_cakes', 'creme_brulee', 'croque_madame',
  'cup_cakes', 'deviled_eggs', 'donuts', 'dumplings', 'edamame', 'eggs_benedict', 'escargots', 'falafel',
  'filet_mignon', 'fish_and_chips', 'foie_gras', 'french_fries', 'french_onion_soup', 'french_toast',
  'fried_calamari', 'fried_rice', 'frozen_yogurt', 'garlic_bread', 'gnocchi', 'greek_salad', 'grilled_cheese_sandwich',
  'grilled_salmon', 'guacamole', 'gyoza', 'hamburger', 'hot_and_sour_soup', 'hot_dog', 'huevos_rancheros', 'hummus',
  'ice_cream', 'lasagna', 'lobster_bisque', 'lobster_roll_sandwich', 'macaroni_and_cheese', 'macarons', 'miso_soup',
  'mussels', 'nachos', 'omelette', 'onion_rings', 'oysters', 'pad_thai', 'paella', 'pancakes', 'panna_cotta',
  'peking_duck', 'pho', 'pizza', 'pork_chop', 'poutine', 'prime_rib', 'pulled_pork_sandwich', 'ramen', 'ravioli',
  'red_velvet_cake', 'risotto', 'samosa', 'sashimi', 'scallops', 'seaweed_salad', 'shrimp_and_grits',
  'spaghetti_bolognese', 'spaghetti_carbonara', 'spring_rolls', 'steak', 'strawberry_shortcake', 'sushi', 'tacos',
  'takoyaki', 'tiramisu', 'tuna_tartare', 'waffles',
];
export const FOOD101_CLASSES = FOOD101_RAW.map(underscoresToSpaces);

/** Oxford-IIIT Pet's 37 breeds (torchvision names, label order). */
export const OXFORD_PET_CLASSES = [
  'Abyssinian', 'American Bulldog', 'American Pit Bull Terrier', 'Basset Hound', 'Beagle', 'Bengal', 'Birman',
  'Bombay', 'Boxer', 'British Shorthair', 'Chihuahua', 'Egyptian Mau', 'English Cocker Spaniel', 'English Setter',
  'German Shorthaired', 'Great Pyrenees', 'Havanese', 'Japanese Chin', 'Keeshond', 'Leonberger', 'Maine Coon',
  'Miniature Pinscher', 'Newfoundland', 'Persian', 'Pomeranian', 'Pug', 'Ragdoll', 'Russian Blue', 'Saint Bernard',
  'Samoyed', 'Scottish Terrier', 'Shiba Inu', 'Siamese', 'Sphynx', 'Staffordshire Bull Terrier', 'Wheaten Terrier',
  'Yorkshire Terrier',
];

/** Oxford Flowers-102, MTIL/CLIP's custom names in label order 1–102. */
export const FLOWERS102_CLASSES = [
  'pink primrose', 'hard-leaved pocket orchid', 'canterbury bells', 'sweet pea', 'english marigold', 'tiger lily',
  'moon orchid', 'bird of paradise', 'monkshood', 'globe thistle', 'snapdragon', "colt's foot", 'king protea',
  'spear thistle', 'yellow iris', 'globe-flower', 'purple coneflower', 'peruvian lily', 'balloon flower',
  'giant white arum lily', 'fire lily', 'pincushion flower', 'fritillary', 'red ginger', 'grape hyacinth',
  'corn poppy', 'prince of wales feathers', 'stemless gentian', 'artichoke', 'sweet william', 'carnation',
  'garden phlox', 'love in the mist', 'mexican aster', 'alpine sea holly', 'ruby-lipped cattleya', 'cape flower',
  'great masterwort', 'siam tulip', 'lenten rose', 'barbeton daisy', 'daffodil', 'sword lily', 'poinsettia',
  'bolero deep blue', 'wallflower', 'marigold', 'buttercup', 'oxeye daisy', 'common dandelion', 'petunia',
  'wild pansy', 'primula', 'sunflower', 'pelargonium', 'bishop of llandaff', 'gaura', 'geranium', 'orange dahlia',
  'pink and yellow dahlia', 'cautleya spicata', 'japanese anemone', 'black-eyed susan', 'silverbush',
  'californian poppy', 'osteospermum', 'spring crocus', 'bearded iris', 'windflower', 'tree poppy', 'gazania',
  'azalea', 'water lily', 'rose', 'thorn apple', 'morning glory', 'passion flower', 'lotus', 'toad lily',
  'anthurium', 'frangipani', 'clematis', 'hibiscus', 'columbine', 'desert-rose', 'tree mallow', 'magnolia',
  'cyclamen', 'watercress', 'canna lily', 'hippeastrum', 'bee balm', 'air plant', 'foxglove', 'bougainvillea',
  'camellia', 'mallow', 'mexican petunia', 'bromelia', 'blanket flower', 'trumpet creeper', 'blackberry lily',
];

/** FGVC-Aircraft's 100 variants (variants.txt order, as torchvision's `annotation_level="variant"`). */
export const AIRCRAFT_CLASSES = [
  '707-320', '727-200', '737-200', '737-300', '737-400', '737-500', '737-600', '737-700', '737-800', '737-900',
  '747-100', '747-200', '747-300', '747-400', '757-200', '757-300', '767-200', '767-300', '767-400', '777-200',
  '777-300', 'A300B4', 'A310', 'A318', 'A319', 'A320', 'A321', 'A330-200', 'A330-300', 'A340-200',
  'A340-300', 'A340-500', 'A340-600', 'A380', 'ATR-42', 'ATR-72', 'An-12', 'BAE 146-200', 'BAE 146-300', 'BAE-125',
  'Beechcraft 1900', 'Boeing 717', 'C-130', 'C-47', 'CRJ-200', 'CRJ-700', 'CRJ-900', 'Cessna 172', 'Cessna 208',
  'Cessna 525', 'Cessna 560', 'Challenger 600', 'DC-10', 'DC-3', 'DC-6', 'DC-8', 'DC-9-30', 'DH-82', 'DHC-1',
  'DHC-6', 'DHC-8-100', 'DHC-8-300', 'DR-400', 'Dornier 328', 'E-170', 'E-190', 'E-195', 'EMB-120', 'ERJ 135',
  'ERJ 145', 'Embraer Legacy 600', 'Eurofighter Typhoon', 'F-16A/B', 'F/A-18', 'Falcon 2000', 'Falcon 900',
  'Fokker 100', 'Fokker 50', 'Fokker 70', 'Global Express', 'Gulfstream IV', 'Gulfstream V', 'Hawk T1', 'Il-76',
  'L-1011', 'MD-11', 'MD-80', 'MD-87', 'MD-90', 'Metroliner', 'Model B200', 'PA-28', 'SR-20', 'Saab 2000',
  'Saab 340', 'Spitfire', 'Tornado', 'Tu-134', 'Tu-154', 'Yak-42',
];

/**
 * Caltech-101, the custom 101-name list of MTIL (CLIP's prompt list), in the label order of the sorted
 * folders (Faces, Faces_easy, Leopards, Motorbikes, accordion, …). The doubled space in
 * "head of a  crocodile" is in the original list and kept.
 */
export const CALTECH101_CLASSES = [
  'off-center face', 'centered face', 'leopard', 'motorbike', 'accordion', 'airplane', 'anchor', 'ant', 'barrel',
  'bass', 'beaver', 'binocular', 'bonsai', 'brain', 'brontosaurus', 'buddha', 'butterfly', 'camera', 'cannon',
  'side of a car', 'ceiling fan', 'cellphone', 'chair', 'chandelier', 'body of a cougar cat', 'face of a cougar cat',
  'crab', 'crayfish', 'crocodile', 'head of a  crocodile', 'cup', 'dalmatian', 'dollar bill', 'dolphin', 'dragonfly',
  'electric guitar', 'elephant', 'emu', 'euphonium', 'ewer', 'ferry', 'flamingo', 'head of a flamingo', 'garfield',
  'gerenuk', 'gramophone', 'grand piano', 'hawksbill', 'headphone', 'hedgehog', 'helicopter', 'ibis', 'inline skate',
  'joshua tree', 'kangaroo', 'ketch', 'lamp', 'laptop', 'llama', 'lobster', 'lotus', 'mandolin', 'mayfly', 'menorah',
  'metronome', 'minaret', 'nautilus', 'octopus', 'okapi', 'pagoda', 'panda', 'pigeon', 'pizza', 'platypus', 'pyramid',
  'revolver', 'rhino', 'rooster', 'saxophone', 'schooner', 'scissors', 'scorpion', 'sea horse',
  'snoopy (cartoon beagle)', 'soccer ball', 'stapler', 'starfish', 'stegosaurus', 'stop sign', 'strawberry',
  'sunflower', 'tick', 'trilobite', 'umbrella', 'watch', 'water lilly', 'wheelchair', 'wild cat', 'windsor chair',
  'wrench', 'yin and yang symbol',
];

// ---------------------------------------------------------------- templates

/** CLIP's 18 CIFAR templates (also used for CIFAR-10 and as the generic list for other photo datasets). */
export const CIFAR_TEMPLATES = [
  'a photo of a {}.', 'a blurry photo of a {}.', 'a black and white photo of a {}.', 'a low contrast photo of a {}.',
  'a high contrast photo of a {}.', 'a bad photo of a {}.', 'a good photo of a {}.', 'a photo of a small {}.',
  'a photo of a big {}.', 'a photo of the {}.', 'a blurry photo of the {}.', 'a black and white photo of the {}.',
  'a low contrast photo of the {}.', 'a high contrast photo of the {}.', 'a bad photo of the {}.',
  'a good photo of the {}.', 'a photo of the small {}.', 'a photo of the big {}.',
];

/** CLIP's 34 Caltech-101 templates: 17 art styles with "a" then the same 17 with "the". */
export const CALTECH101_TEMPLATES = [
  'a photo of a {}.', 'a painting of a {}.', 'a plastic {}.', 'a sculpture of a {}.', 'a sketch of a {}.',
  'a tattoo of a {}.', 'a toy {}.', 'a rendition of a {}.', 'a embroidered {}.', 'a cartoon {}.',
  'a {} in a video game.', 'a plushie {}.', 'a origami {}.', 'art of a {}.', 'graffiti of a {}.',
  'a drawing of a {}.', 'a doodle of a {}.',
  'a photo of the {}.', 'a painting of the {}.', 'the plastic {}.', 'a sculpture of the {}.', 'a sketch of the {}.',
  'a tattoo of the {}.', 'the toy {}.', 'a rendition of the {}.', 'the embroidered {}.', 'the cartoon {}.',
  'the {} in a video game.', 'the plushie {}.', 'the origami {}.', 'art of the {}.', 'graffiti of the {}.',
  'a drawing of the {}.', 'a doodle of the {}.',
];

export const DTD_TEMPLATES = [
  'a photo of a {} texture.', 'a photo of a {} pattern.', 'a photo of a {} thing.', 'a photo of a {} object.',
  'a photo of the {} texture.', 'a photo of the {} pattern.', 'a photo of the {} thing.', 'a photo of the {} object.',
];

export const EUROSAT_TEMPLATES = [
  'a centered satellite photo of {}.', 'a centered satellite photo of a {}.', 'a centered satellite photo of the {}.',
];

export const SUN397_TEMPLATES = ['a photo of a {}.', 'a photo of the {}.'];

export const AIRCRAFT_TEMPLATES = ['a photo of a {}, a type of aircraft.', 'a photo of the {}, a type of aircraft.'];

export const FLOWERS_TEMPLATES = ['a photo of a {}, a type of flower.'];

export const FOOD_TEMPLATES = ['a photo of a {}, a type of food.'];

export const MNIST_TEMPLATES = ['a photo of the number: "{}".'];

export const OXFORD_PET_TEMPLATES = ['a photo of a {}, a type of pet.'];

export const STANFORD_CARS_TEMPLATES = [
  'a photo of a {}, a type of car.', 'a photo of a {}.', 'a photo of the {}.', 'a photo of my {}.', 'i love my {}!',
  'a photo of my dirty {}.', 'a photo of my clean {}.', 'a photo of my new {}.', 'a photo of my old {}.',
];

/** Fashion-MNIST has no CLIP list: the generic photo templates, first "a photo of a {}.". */
export const FASHION_MNIST_TEMPLATES = CIFAR_TEMPLATES;

/** Tiny ImageNet has no list in the fact sheets: the generic photo templates. */
export const TINY_IMAGENET_TEMPLATES = CIFAR_TEMPLATES;

/** Fills a template's `{}` with a class name. */
export function fillTemplate(template: string, className: string): string {
  return template.replace('{}', className);
}
