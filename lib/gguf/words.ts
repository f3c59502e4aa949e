/**
 * English words for fixture vocabularies, most important first: the LLaVA prompt format, then
 * question words and the vocabulary of visual question answering (objects, colours, counts,
 * places, actions), then general English. A tiny vocabulary takes a prefix of this list.
 */

/** Words of the LLaVA-1.5 prompt and of the SRF question/answer format. */
const PROMPT_WORDS = `
USER ASSISTANT Question Answer Q A the a is what What The Is yes no Yes No
`;

const QA_WORDS = `
of in on and to are there how How many Are There Where where which Which who Who
color colour image picture photo this that it its an with at by for from
man woman person people men women boy girl child children kid kids baby
dog cat horse cow sheep bird birds elephant giraffe zebra bear animal animals
car bus truck train bike bicycle motorcycle boat plane airplane street road
red blue green yellow white black brown orange pink purple gray grey silver gold dark light
one two three four five six seven eight nine ten zero 0 1 2 3 4 5 6 7 8 9 10
left right top bottom front back behind next near under above below middle center side
table chair bed couch sofa room kitchen window door wall floor house building sky tree trees
grass water sea beach snow field park city sign clock phone laptop computer screen book
shirt hat jacket dress shoes bag umbrella glasses cup plate bowl food pizza cake sandwich
holding wearing sitting standing walking running playing eating riding looking lying flying
doing does do did has have had can could would will be being been was were not
he she they we you I his her their them him my your our
small large big little tall short long old young new round square
`;

const COMMON_WORDS = `
about after again all also always am another any anything around as ask away
because before best better between both but call came come day different down each
end even every example few find first get give go going good great group hand help
here high home if into just keep kind know last leave let life like line live look
made make may me mean might more most move much must name need never night now
number off often only open or other out over own part place play point put read
really same say school see seem set should show since so some something still such
take tell than thank then these thing things think those though through time today
together too try turn up us use very want way well went when while why work world
year years ask answer question questions describe describes described description
shown shows visible appears appear seen scene background foreground object objects
main mostly several various multiple single pair group crowd line row
clear cloudy sunny rainy day night morning evening outdoor outdoors indoor indoors
wooden metal plastic glass paper stone brick concrete fabric
sitting lying parked driving moving standing waiting watching reading writing cooking
skateboard surfboard skis snowboard kite frisbee ball bat racket glove tennis baseball
soccer football basketball game team player players match sport sports
fruit fruits apple apples banana bananas orange oranges vegetables broccoli carrot carrots
hot dog donut donuts bread meat cheese salad soup coffee tea wine beer drink bottle
vase flowers flower plant plants pot tv television remote keyboard mouse desk lamp
toilet sink bathroom bath mirror towel shower refrigerator oven microwave stove counter
bench fence pole light lights traffic stop fire hydrant parking meter track station
airport runway sky clouds mountain mountains hill hills river lake ocean waves sand
grassy dirt muddy wet dry empty full open closed
face hair head eyes nose mouth ear ears arm arms leg legs hands feet body
smiling happy sad playing posing talking laughing jumping swimming skiing surfing
number numbers letter letters word words text written sign says reads
logo brand name poster picture frame painting wall art
who whose whom whatever whichever
is isn't aren't don't doesn't can't won't
`;

const GENERAL_WORDS = `
able above accept across act action actually add address age ago agree air allow almost
alone along already although among amount and animal another appear apply area argue arm
army art article artist attack attention audience author avoid baby bad ball bank bar
base beautiful beat become bed begin behavior believe benefit bill billion bit blood
board body born box break bring brother budget build building business buy camera
campaign cancer candidate capital card care career carry case catch cause cell central
century certain chair challenge chance change character charge check choice choose church
citizen civil claim class clearly close coach cold collection college come commercial
common community company compare concern condition conference consider consumer contain
continue control cost country couple course court cover create crime cultural culture
current customer cut dark data daughter dead deal death debate decade decide decision
deep defense degree democratic design despite detail determine develop development die
difference difficult dinner direction director discover discuss discussion disease doctor
dream drive drop drug during early east easy economic economy edge education effect
effort eight either election else employee energy enjoy enough enter entire environment
especially establish evening event everybody everyone everything evidence exactly exist
expect experience expert explain eye fact factor fail fall family far fast father fear
federal feel feeling fight figure fill film final finally financial fine finger finish
fish five floor fly focus follow foot force foreign forget form former forward free
friend fund future garden gas general generation girl glass goal government ground grow
growth guess gun guy hair half hang happen hard head health hear heart heat heavy her
herself himself history hit hold hope hospital hotel hour however huge human hundred
husband idea identify imagine impact important improve include including increase indeed
indicate individual industry information inside instead institution interest interesting
international interview investment involve issue item itself job join key kill knowledge
land language large late later laugh law lawyer lay lead leader learn least left legal
less letter level lie list listen little local lose loss lot love low machine magazine
main maintain major majority manage management manager market marriage material matter
maybe measure media medical meet meeting member memory mention message method middle
military million mind minute miss mission model modern moment money month mother movement
movie music myself nation national natural nature nearly necessary network news newspaper
nice none nor north note nothing notice occur offer office officer official oil ok once
operation opportunity option order organization others outside owner page pain paper
parent participant particular particularly partner party pass past patient pattern pay
peace perform performance perhaps period personal phone physical pick piece plan police
policy political politics poor popular population position positive possible power
practice prepare present president pressure pretty prevent price private probably
problem process produce product production professional professor program project
property protect prove provide public pull purpose push quality quickly quite race radio
raise range rate rather reach ready real reality realize reason receive recent recently
recognize record reduce reflect region relate relationship religious remain remember
report represent require research resource respond response rest result return reveal
rich rise risk rock role rule safe save scene science scientist score sea season seat
second section security seek sell send senior sense series serious serve service seven
sex sexual shake share shoot shoulder similar simple simply sing sister sit site
situation size skill skin social society soldier somebody someone sometimes son song
soon sort sound source south southern space speak special specific speech spend spring
staff stage stand standard star start state statement stay step stock store story
strategy strong structure student study stuff style subject success successful suddenly
suffer suggest summer support sure surface system talk task tax teach teacher teaching
technology television ten tend term test than theory third thought thousand threat
throughout throw thus total tough toward town trade traditional training travel treat
treatment trial trip trouble true truth type understand unit until usually value victim
view violence visit voice vote wait walk wall war watch wear weapon weight west western
whatever white whole wide wife win wind wish within without wonder worker worry write
writer wrong yard yeah yet yourself
`;

/** Pieces that continue a word (no leading space): common English suffixes and syllables. */
export const SUFFIX_PIECES = `s es ed ing er ers est ly y ion ions tion tions ness ment ments able ful less al ic ive ous ist ism ity en an ar or`
  .split(/\s+/)
  .filter(Boolean);

function splitWords(...lists: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const list of lists) {
    for (const w of list.split(/\s+/)) {
      if (w && !seen.has(w)) {
        seen.add(w);
        out.push(w);
      }
    }
  }
  return out;
}

/** Capitalised words that start a line of a prompt, so vocabularies also hold them without "▁". */
export const LINE_START_WORDS: readonly string[] = splitWords(PROMPT_WORDS, QA_WORDS).filter((w) => /^[A-Z]/.test(w));

/** All words, most important first, without duplicates (case-sensitive). */
export const ENGLISH_WORDS: readonly string[] = splitWords(PROMPT_WORDS, QA_WORDS, COMMON_WORDS, GENERAL_WORDS);

/** Lowercase words for a WordPiece (BERT, uncased) vocabulary. */
export const ENGLISH_WORDS_LOWER: readonly string[] = [...new Set(ENGLISH_WORDS.map((w) => w.toLowerCase()))];
